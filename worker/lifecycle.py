"""Process hooks: prefork children must not share database or SMTP connections."""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, worker_process_init, worker_process_shutdown
from flask import Flask

from shared.database import db
from worker import smtp


def connect(app: Flask) -> None:
    def reset_connections(**_: Any) -> None:
        with app.app_context():
            db.engine.dispose(close=False)
        smtp.forget_connection()

    def remove_session(**_: Any) -> None:
        with app.app_context():
            db.session.remove()

    def say_goodbye(**_: Any) -> None:
        smtp.close_connection()

    worker_process_init.connect(reset_connections, weak=False)
    worker_process_shutdown.connect(say_goodbye, weak=False)
    task_postrun.connect(remove_session, weak=False)
