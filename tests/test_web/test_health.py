"""`/healthz` reports the database and the broker, and fails loudly when one is down.

It also says whether mail is moving; a stalled outbox is reported in the body with a 200,
because the status code is what compose restarts web on, and web is not what is stuck.
"""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from support.factories import add_delivery, record_sweep

from shared.clock import utcnow
from shared.config import Settings
from shared.database import db
from shared.models import DeliveryStatus
from web import create_app


@pytest.fixture
def broker_up(fake_broker: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    # /healthz pings Redis with redis-py directly; point it at the in-memory broker.
    monkeypatch.setattr(redis.Redis, "from_url", lambda *args, **kwargs: fake_broker)


def test_health_reports_a_down_broker_as_503(client: FlaskClient):
    # The test settings point the broker at a closed port.
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "ok"
    assert response.json["broker"].startswith("error")


def test_a_moving_outbox_is_ok(app: Flask, client: FlaskClient, broker_up: None):
    record_sweep(app, utcnow() - timedelta(seconds=2))
    add_delivery(app, DeliveryStatus.QUEUED, created_at=utcnow() - timedelta(seconds=1))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    outbox = response.json["outbox"]
    assert outbox["status"] == "ok"
    assert outbox["reasons"] == []
    assert outbox["stall_after_seconds"] == 120
    assert 0 <= outbox["last_sweep_seconds"] < 60
    assert 0 <= outbox["oldest_due_seconds"] < 60


def test_an_email_due_too_long_says_stalled_without_failing_the_check(
        app: Flask, client: FlaskClient, broker_up: None):
    add_delivery(app, DeliveryStatus.RETRYING,
                 next_attempt_at=utcnow() - timedelta(minutes=10))
    response = client.get("/healthz")
    assert response.status_code == 200  # web itself is fine: restarting it would not help
    assert response.json["status"] == "stalled"
    assert response.json["outbox"]["status"] == "stalled"
    assert response.json["outbox"]["oldest_due_seconds"] >= 590
    assert response.json["outbox"]["reasons"][0].startswith("an email has been due for")
    assert b"someone@example.com" not in response.data


def test_a_relay_that_stopped_sweeping_says_stalled(app: Flask, client: FlaskClient,
                                                   broker_up: None):
    record_sweep(app, utcnow() - timedelta(minutes=5))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "stalled"
    assert response.json["outbox"]["reasons"] == ["the relay last swept 300 s ago"]


def test_the_threshold_comes_from_outbox_stall_after(settings: Settings, broker_up: None):
    app = create_app(settings.with_overrides(outbox_stall_after=900))
    with app.app_context():
        db.create_all()
    record_sweep(app, utcnow() - timedelta(minutes=5))
    response = app.test_client().get("/healthz")
    assert response.json["status"] == "ok"
    assert response.json["outbox"]["stall_after_seconds"] == 900


def test_a_stall_with_the_broker_down_is_still_503_and_says_both(app: Flask,
                                                                  client: FlaskClient):
    record_sweep(app, utcnow() - timedelta(minutes=5))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["outbox"]["status"] == "stalled"
