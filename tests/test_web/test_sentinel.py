"""Behind Redis Sentinel (REDIS_URL=sentinel://...), the web tier's Redis users all find the
master: /healthz, /metrics, the rate limiter and the publisher, before and after a failover.

Real processes: a master, a replica and three Sentinels (tests/support/sentinel.py), the
data nodes and the Sentinels with different passwords.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from support.sentinel import SentinelGroup
from support.web_apps import built_web_app

from shared.config import Settings
from shared.contract import EMAIL_QUEUE
from shared.database import db
from shared.models import EmailDelivery

pytestmark = pytest.mark.integration

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def sentinel_app(settings: Settings, sentinel_group: SentinelGroup) -> Iterator[Flask]:
    with built_web_app(settings.with_overrides(
        redis_url=sentinel_group.url(),
        redis_sentinel_password=sentinel_group.sentinel_password,
        ratelimit_storage_uri=None,  # the limiter's counters go to the broker's Redis too
        ratelimit_reset_request_per_email="2 per 15 minutes",
        metrics_token=TOKEN,
    ), csrf=False) as app:
        yield app


def ask_for_reset(app: Flask, email: str = "susan@example.com") -> None:
    response = app.test_client().post("/reset_password_request", data={"email": email})
    assert response.headers["Location"] == "/reset_password_request/sent"


def statuses(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            db.select(EmailDelivery.status).order_by(EmailDelivery.created_at)))


def health(app: Flask) -> dict[str, object]:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200, response.json
    return dict(response.json)


def gauges(app: Flask) -> dict[str, float]:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {sample.name: sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples if not sample.labels}


def test_health_metrics_limits_and_publishing_reach_the_master(sentinel_app: Flask,
                                                                sentinel_group: SentinelGroup):
    for _ in range(3):
        ask_for_reset(sentinel_app)

    assert statuses(sentinel_app) == ["queued", "queued", "throttled"]
    master = sentinel_group.master()
    assert master.llen(EMAIL_QUEUE) == 3  # throttled requests are published like the rest
    assert master.keys("*reset-request-email*"), "the limiter's counters are on the master"
    report = health(sentinel_app)
    assert {key: report[key] for key in ("status", "database", "broker", "email_queue_length")} \
        == {"status": "ok", "database": "ok", "broker": "ok", "email_queue_length": 3}
    found = gauges(sentinel_app)
    assert found["microblog_broker_up"] == 1
    assert found["microblog_email_queue_length"] == 3


def test_after_a_failover_they_follow_the_new_master(sentinel_app: Flask,
                                                     sentinel_group: SentinelGroup):
    ask_for_reset(sentinel_app)
    ask_for_reset(sentinel_app)
    assert sentinel_group.master().wait(1, 5000) == 1  # the replica has both, and the counts
    old_master = sentinel_group.kill_master()

    assert gauges(sentinel_app)["microblog_broker_up"] == 0  # Sentinels still name the dead one
    sentinel_group.wait_for_failover()
    assert sentinel_group.master_port != old_master

    assert health(sentinel_app)["email_queue_length"] == 2
    assert gauges(sentinel_app)["microblog_broker_up"] == 1
    ask_for_reset(sentinel_app)  # the third request in 15 minutes, counted on the new master
    assert statuses(sentinel_app) == ["queued", "queued", "throttled"]
    assert sentinel_group.master().llen(EMAIL_QUEUE) == 3


def test_a_sentinel_down_costs_the_health_check_nothing(sentinel_app: Flask,
                                                        sentinel_group: SentinelGroup):
    """The next Sentinel is the retry: redis-py's default retries with backoff on the dead
    one made each check take about 3.5 s."""
    sentinel_group.kill_sentinel(0)
    started = time.monotonic()
    for _ in range(3):
        assert health(sentinel_app)["broker"] == "ok"
    assert time.monotonic() - started < 3
