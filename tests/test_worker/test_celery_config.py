"""Broker and relay settings that the delivery guarantees rest on."""

from __future__ import annotations

import ssl

import pytest

from shared.celery_factory import (
    REDIS_TRANSPORT,
    SENTINEL_TRANSPORT,
    celery_settings,
    make_celery,
    publisher_settings,
)
from shared.config import ConfigError, Settings
from worker.app import create_worker_app


def test_worker_registers_every_contract_task_and_runs_the_relay_itself(settings: Settings):
    celery = create_worker_app(settings).extensions["celery"]
    celery.loader.import_default_modules()
    for name in ("email.send_password_reset", "email.send_password_changed"):
        assert name in celery.tasks
    # No relay task and no schedule: each worker's main process sweeps (a bootstep).
    assert "email.relay_outbox" not in celery.tasks
    assert not celery.conf.beat_schedule
    assert "Outbox relay" in {step.label for step in celery.steps["worker"]}


def test_a_killed_workers_task_comes_back_within_about_thirty_seconds():
    settings = Settings()
    options = celery_settings(settings)["broker_transport_options"]
    # Redelivery: visibility timeout plus at most one sweep interval, every sweep scans.
    assert options["visibility_timeout"] + options["unacked_restore_interval"] <= 35
    assert options["unacked_restore_throttle"] == 1
    # The relay takes the row over when its lease ends, before the broker redelivers.
    assert settings.delivery_lease_seconds + settings.outbox_relay_interval <= 30
    assert settings.delivery_lease_seconds <= settings.broker_visibility_timeout


def test_the_web_never_waits_long_for_the_broker():
    settings = Settings(publish_timeout_seconds=0.5)
    web = publisher_settings(settings)
    options = web["broker_transport_options"]
    assert web["broker_connection_timeout"] == 0.5
    assert options["socket_connect_timeout"] == options["socket_timeout"] == 0.5
    assert options["max_retries"] == 1 and options["connect_retries_timeout"] == 0.5


@pytest.mark.parametrize("overrides, message", [
    ({"task_soft_time_limit": 20, "task_time_limit": 20}, "TASK_SOFT_TIME_LIMIT"),
    ({"broker_visibility_timeout": 20}, "BROKER_VISIBILITY_TIMEOUT"),
    ({"outbox_relay_interval": 0}, "OUTBOX_RELAY_INTERVAL"),
])
def test_worker_refuses_timeouts_that_could_send_twice(settings: Settings, overrides, message):
    with pytest.raises(ConfigError, match=message):
        create_worker_app(settings.with_overrides(**overrides))


def test_outbox_settings_come_from_the_environment():
    settings = Settings.from_env({
        "OUTBOX_RELAY_INTERVAL": "1.5", "OUTBOX_STALE_AFTER": "7", "RETRY_BACKOFF_BASE": "0.5",
        "RETRY_BACKOFF_MAX": "4", "DELIVERY_MAX_ATTEMPTS": "3",
    })
    assert (settings.outbox_relay_interval, settings.outbox_stale_after) == (1.5, 7)
    assert (settings.retry_backoff_base, settings.retry_backoff_max) == (0.5, 4)
    assert settings.delivery_max_attempts == 3


def test_the_documented_example_environment_is_a_safe_one():
    from pathlib import Path

    from dotenv import dotenv_values

    example = Path(__file__).resolve().parents[2] / ".env.example"
    values = {k: v for k, v in dotenv_values(example).items() if v is not None}
    settings = Settings.from_env(values)
    settings.check_delivery_timing()
    defaults = Settings()
    for name in ("task_time_limit", "broker_visibility_timeout", "publish_timeout_seconds",
                 "outbox_relay_interval", "outbox_stale_after", "retry_backoff_base",
                 "retry_backoff_max", "delivery_max_attempts"):
        assert getattr(settings, name) == getattr(defaults, name), name


def test_redis_py_does_not_retry_under_kombu():
    """Its reconnect-and-retry turns a dead pub/sub socket into a read that never returns."""
    options = celery_settings(Settings())["broker_transport_options"]
    assert options["retry_on_timeout"] is False
    assert options["socket_timeout"] and options["socket_connect_timeout"]


@pytest.mark.parametrize("url, transport", [
    ("redis://127.0.0.1:6379/0", REDIS_TRANSPORT),
    ("rediss://:secret@cache.example.com:6380/0?ssl_cert_reqs=required", REDIS_TRANSPORT),
    ("sentinel://127.0.0.1:26379/0", SENTINEL_TRANSPORT),
])
def test_redis_brokers_use_the_transport_that_survives_losing_redis_mid_send(url, transport):
    assert celery_settings(Settings(redis_url=url))["broker_transport"] == transport


def test_a_tls_broker_url_keeps_its_tls_settings_under_that_transport():
    settings = Settings(redis_url="rediss://:secret@cache.example.com:6380/2?ssl_cert_reqs=required")
    with make_celery(settings, "test").connection_for_write() as connection:
        assert connection.transport_cls == REDIS_TRANSPORT
        assert connection.ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        assert (connection.hostname, connection.port, connection.virtual_host,
                connection.password) == ("cache.example.com", 6380, "2", "secret")
