"""The WSGI entry point: `gunicorn web.wsgi:app`, configured only by the environment."""

from shared.config import exit_on_config_error
from web import create_app

with exit_on_config_error():
    app = create_app()
