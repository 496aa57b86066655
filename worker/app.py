"""The worker's Flask app: database, Flask-Mail and Celery, but no routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery, Task
from flask import Flask
from flask_mail import Mail

from shared.celery_factory import make_celery
from shared.config import Settings
from shared.database import db
from worker import lifecycle, relay_thread, smtp_probe, task_log

mail = Mail()
TEMPLATES = Path(__file__).parent / "templates"


def create_worker_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    settings.check_secret_key()
    settings.check_link_settings()
    settings.check_delivery_timing()
    settings.check_mail_security()
    app = Flask("worker", template_folder=str(TEMPLATES))
    app.config.from_mapping(settings.flask_config())
    db.init_app(app)
    mail.init_app(app)
    celery_init_app(app, settings)
    return app


def celery_init_app(app: Flask, settings: Settings) -> Celery:
    class FlaskTask(Task):  # type: ignore[misc]
        """Every task runs inside the app context: database session, mail and templates."""

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = make_celery(settings, "worker", task_cls=FlaskTask, include=["worker.tasks"])
    celery.set_default()
    app.extensions["celery"] = celery
    lifecycle.connect(app)
    smtp_probe.connect(celery, settings)
    relay_thread.install(app, celery)  # every worker relays: no beat
    task_log.connect()
    return celery
