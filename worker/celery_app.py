"""Entry module: `celery -A worker.celery_app:celery_app worker -Q email`.

The Flask object is deliberately not called `app`: `celery -A` would pick it first.
Settings that are not safe to run stop the process with one line saying which, not a
traceback.
"""

from shared.config import exit_on_config_error
from worker.app import create_worker_app

with exit_on_config_error():
    flask_app = create_worker_app()
celery_app = flask_app.extensions["celery"]
