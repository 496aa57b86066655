"""`/metrics`: outbox rows and queue length for Prometheus, only for the holder of the token."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest
import redis
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from support.factories import add_delivery, record_sweep

from shared.clock import utcnow
from shared.config import Settings
from shared.contract import EMAIL_QUEUE
from shared.database import db
from shared.models import DeliveryKind, DeliveryStatus, EmailDelivery, RelaySweep
from web import create_app

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(metrics_token=TOKEN)


def scrape(app: Flask, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().get("/metrics", headers=headers)


def samples(response) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def add_row(app: Flask, status: DeliveryStatus, age: timedelta = timedelta()) -> None:
    with app.app_context():
        row = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, "someone@example.com")
        row.status = status.value
        row.created_at = utcnow() - age
        db.session.add(row)
        db.session.commit()


def test_the_token_comes_from_the_environment():
    assert Settings.from_env({"METRICS_TOKEN": "abc"}).metrics_token.get_secret_value() == "abc"
    assert Settings.from_env({"METRICS_TOKEN": ""}).metrics_token is None


def test_without_a_configured_token_there_is_no_metrics_page(settings: Settings, fake_broker):
    app = create_app(settings.with_overrides(metrics_token=None))
    assert app.test_client().get("/metrics").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer"])
def test_a_missing_or_wrong_token_is_refused(app: Flask, header: str | None):
    headers = {"Authorization": header} if header else {}
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"microblog_" not in response.data


def test_rows_by_status_queue_length_and_the_oldest_waiting_row(
        app: Flask, fake_broker: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch):
    # The page reads the queue with redis-py directly; point it at the in-memory broker.
    monkeypatch.setattr(redis.Redis, "from_url", lambda *args, **kwargs: fake_broker)
    add_row(app, DeliveryStatus.SENT)
    add_row(app, DeliveryStatus.SENT)
    add_row(app, DeliveryStatus.FAILED)
    add_row(app, DeliveryStatus.QUEUED, age=timedelta(minutes=5))
    fake_broker.rpush(EMAIL_QUEUE, b"{}", b"{}", b"{}")

    response = scrape(app)

    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    found = samples(response)
    assert found[("microblog_email_deliveries", (("status", "sent"),))] == 2
    assert found[("microblog_email_deliveries", (("status", "failed"),))] == 1
    assert found[("microblog_email_deliveries", (("status", "queued"),))] == 1
    assert found[("microblog_email_deliveries", (("status", "retrying"),))] == 0
    assert found[("microblog_email_queue_length", ())] == 3
    assert found[("microblog_broker_up", ())] == 1
    assert found[("microblog_database_up", ())] == 1
    assert 290 <= found[("microblog_email_oldest_queued_seconds", ())] <= 400
    assert b"someone@example.com" not in response.data


def test_a_down_broker_is_reported_not_a_500(settings: Settings, fake_broker):
    app = create_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0",
                                             metrics_token=TOKEN))
    with app.app_context():
        db.create_all()
    response = scrape(app)
    assert response.status_code == 200
    found = samples(response)
    assert found[("microblog_broker_up", ())] == 0
    assert ("microblog_email_queue_length", ()) not in found
    assert found[("microblog_database_up", ())] == 1
    with app.app_context():
        db.engine.dispose()


def test_a_down_database_is_reported_not_a_500(settings: Settings, fake_broker, tmp_path):
    app = create_app(settings.with_overrides(
        database_url=f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}", metrics_token=TOKEN))
    response = scrape(app)
    assert response.status_code == 200
    assert samples(response)[("microblog_database_up", ())] == 0


def test_stalls_show_as_due_rows_and_the_age_of_the_last_sweep(
        app: Flask, fake_broker: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(redis.Redis, "from_url", lambda *args, **kwargs: fake_broker)
    now = utcnow()
    add_delivery(app, DeliveryStatus.RETRYING, next_attempt_at=now - timedelta(minutes=4))
    add_delivery(app, DeliveryStatus.SENDING, lease_until=now - timedelta(minutes=1))
    add_delivery(app, DeliveryStatus.SENDING, lease_until=now + timedelta(minutes=1))
    record_sweep(app, now - timedelta(minutes=3))

    found = samples(scrape(app))

    assert found[("microblog_email_due", ())] == 2
    assert 230 <= found[("microblog_email_oldest_due_seconds", ())] <= 330
    assert 170 <= found[("microblog_relay_last_sweep_age_seconds", ())] <= 270
    assert found[("microblog_outbox_relay_interval_seconds", ())] == 5
    assert found[("microblog_outbox_stall_after_seconds", ())] == 120
    # The first version's metric still counts queued rows only.
    assert found[("microblog_email_oldest_queued_seconds", ())] == 0


def test_before_any_sweep_the_sweep_age_is_absent_and_nothing_is_due(
        app: Flask, fake_broker: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(redis.Redis, "from_url", lambda *args, **kwargs: fake_broker)
    found = samples(scrape(app))
    assert ("microblog_relay_last_sweep_age_seconds", ()) not in found
    assert found[("microblog_email_due", ())] == 0
    assert found[("microblog_email_oldest_due_seconds", ())] == 0


def test_without_the_relays_table_the_counts_still_come(
        app: Flask, fake_broker: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch):
    """Say web is upgraded before the migration that adds the relay's sweep record ran."""
    monkeypatch.setattr(redis.Redis, "from_url", lambda *args, **kwargs: fake_broker)
    with app.app_context():
        RelaySweep.__table__.drop(db.engine)
    found = samples(scrape(app))
    assert found[("microblog_database_up", ())] == 1
    assert found[("microblog_email_deliveries", (("status", "queued"),))] == 0
    assert ("microblog_email_oldest_due_seconds", ()) not in found
