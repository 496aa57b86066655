"""The factories build each tier from explicit settings, and refuse unsafe ones."""

from __future__ import annotations

import os

import pytest

from shared.config import ConfigError, Settings
from web import create_app
from worker.app import create_worker_app


def test_web_factory_uses_the_given_settings(settings: Settings):
    app = create_app(settings)
    assert app.config["SECRET_KEY"] == settings.secret_key.get_secret_value()
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
    assert celery.conf.worker_prefetch_multiplier == settings.worker_prefetch_multiplier
    assert celery.conf.broker_transport_options["visibility_timeout"] < 3600


def test_task_events_are_an_operators_choice(settings: Settings):
    """Off by default (Flower turns the workers' events on when it runs); TASK_EVENTS=true
    turns on both the workers' and the web tier's task-sent events from the start."""
    quiet = create_worker_app(settings.with_overrides(task_events=False)).extensions["celery"]
    assert not quiet.conf.worker_send_task_events and not quiet.conf.task_send_sent_event
    loud = create_worker_app(settings.with_overrides(task_events=True)).extensions["celery"]
    assert loud.conf.worker_send_task_events and loud.conf.task_send_sent_event
    assert Settings.from_env({"TASK_EVENTS": "true"}).task_events
    assert not Settings.from_env({}).task_events


def test_the_pool_defaults_to_two_processes_per_core(settings: Settings):
    celery = create_worker_app(settings).extensions["celery"]
    assert celery.conf.worker_concurrency == 2 * (os.cpu_count() or 1)
    pinned = create_worker_app(settings.with_overrides(worker_concurrency=3))
    assert pinned.extensions["celery"].conf.worker_concurrency == 3
    assert Settings.from_env({"WORKER_CONCURRENCY": ""}).worker_concurrency is None
    assert Settings.from_env({"WORKER_CONCURRENCY": "5"}).worker_concurrency == 5
