"""The worker's Flask app: database, Flask-Mail and Celery, but no routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery, Task
from flask import Flask
from flask_mail import Mail

from shared.celery_factory import make_celery
from shared.config import Settings
from shared.contract import EMAIL_QUEUE, RELAY_OUTBOX
from shared.database import db
from worker import lifecycle, smtp_probe, task_log

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
    celery.conf.update(beat_settings(settings))
    celery.set_default()
    app.extensions["celery"] = celery
    lifecycle.connect(app)
    smtp_probe.connect(celery, settings)
    task_log.connect()
    return celery


def beat_settings(settings: Settings) -> dict[str, Any]:
    """`celery -A worker.celery_app:celery_app beat`: the relay, every few seconds.

    The schedule lives here, not in a file: the in-memory scheduler has nothing worth
    persisting (one fixed interval), so beat needs no writable volume. Relay messages
    share the email queue; one that waited behind a backlog for longer than a queued row
    may wait (`OUTBOX_STALE_AFTER`) is dropped, as later ones are on their way, so a long
    backlog does not collect a relay per interval.
    """
    interval = settings.outbox_relay_interval
    expires = max(4 * interval, float(settings.outbox_stale_after))
    return {
        "beat_scheduler": "celery.beat:Scheduler",
        "beat_max_loop_interval": max(1.0, interval),
        "beat_schedule": {
            "relay-outbox": {
                "task": RELAY_OUTBOX,
                "schedule": interval,
                "options": {"queue": EMAIL_QUEUE, "expires": expires},
            },
        },
    }
