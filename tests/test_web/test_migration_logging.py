"""Migrating in-process leaves the process's own loggers working."""

from __future__ import annotations

import logging
from pathlib import Path

from flask_migrate import upgrade

from shared.config import Settings
from web import create_app, migrations_directory


def test_an_in_process_migration_keeps_the_delivery_log_on(settings: Settings, tmp_path: Path):
    """Alembic's fileConfig would disable every logger that exists when it runs."""
    delivery = logging.getLogger("delivery")
    app = create_app(settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'm.db'}"))
    with app.app_context():
        upgrade(directory=migrations_directory())
        app.extensions["sqlalchemy"].engine.dispose()
    assert not delivery.disabled
