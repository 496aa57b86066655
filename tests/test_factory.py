"""The factories build each tier from explicit settings, and refuse unsafe ones."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings
from web import create_app
from worker.app import create_worker_app


def test_web_factory_uses_the_given_settings(settings: Settings):
    app = create_app(settings)
    assert app.config["SECRET_KEY"] == settings.secret_key
    assert app.config["SETTINGS"] is settings


def test_web_refuses_to_start_in_production_with_the_default_key(settings: Settings):
    with pytest.raises(ConfigError):
        create_app(Settings(env="production"))


def test_worker_refuses_to_start_in_production_without_server_name():
    with pytest.raises(ConfigError, match="SERVER_NAME"):
        create_worker_app(Settings(env="production", secret_key="k" * 40))


def test_worker_registers_the_contract_task(settings: Settings):
    app = create_worker_app(settings)
    celery = app.extensions["celery"]
    celery.loader.import_default_modules()
    assert "email.send_password_reset" in celery.tasks
    assert celery.conf.task_acks_late and celery.conf.task_reject_on_worker_lost
    assert celery.conf.worker_prefetch_multiplier == 1
    assert celery.conf.broker_transport_options["visibility_timeout"] < 3600
    assert celery.conf.worker_send_task_events and celery.conf.task_send_sent_event
