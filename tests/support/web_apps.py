"""A web app for one test: its tables made, its connections and kombu's pools dropped after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import kombu.pools
from flask import Flask

from shared.config import Settings
from shared.database import db
from web import create_app


@contextmanager
def built_web_app(settings: Settings, csrf: bool = True) -> Iterator[Flask]:
    """Celery keeps producers in kombu's process-wide pools, keyed by broker URL: a test that
    points the app at its own broker starts and ends with them empty."""
    kombu.pools.reset()
    app = create_app(settings)
    if not csrf:
        app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        kombu.pools.reset()
