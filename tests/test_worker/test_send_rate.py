"""The global send rate: one bucket in Redis for every worker; over it, a row waits, never fails."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta

import fakeredis
import pytest
import redis
from flask import Flask
from support.processes import RedisServer

from shared.clock import utcnow
from shared.config import Settings
from shared.models import DeliveryStatus, User
from worker import send_rate
from worker.delivery import deliver
from worker.send_rate import SendRate


@pytest.fixture(scope="module")
def real_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["fakeredis", "redis-server"])
def client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    if request.param == "fakeredis":
        yield fakeredis.FakeRedis()
        return
    server: RedisServer = request.getfixturevalue("real_redis")
    with server.client() as real:
        real.flushdb()
        yield real


def test_a_burst_passes_then_tokens_are_reserved_at_the_rate_then_refused(client):
    # Slow enough that a loaded machine's delays between calls hardly refill the bucket.
    bucket = SendRate(client, rate=0.5, burst=4, max_wait=5)
    waits = [bucket.reserve() for _ in range(7)]
    assert waits[:4] == [0.0] * 4  # the burst goes at once
    first, second = waits[4], waits[5]
    assert first is not None and second is not None
    assert first == pytest.approx(2, abs=0.5)  # one token every 2 s, reserved in turn
    assert second - first == pytest.approx(2, abs=0.1)
    assert waits[6] is None  # 6 s away, past the max wait: nothing taken
    assert bucket.reserve() is None


def test_the_bucket_refills_with_time(client):
    bucket = SendRate(client, rate=20, max_wait=0)
    while bucket.reserve() is not None:
        pass
    time.sleep(0.5)  # about ten tokens
    granted = 0
    while bucket.reserve() is not None:
        granted += 1
    assert 6 <= granted <= 20


def test_senders_that_wait_for_their_tokens_keep_to_the_rate(client):
    bucket = SendRate(client, rate=20, max_wait=5)
    started = time.monotonic()
    for _ in range(40):
        wait = bucket.reserve()
        assert wait is not None
        time.sleep(wait)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9  # 20 at once, then 20 more at 20/s
    assert elapsed < 10


def test_two_workers_share_one_bucket(client):
    first = SendRate(client, rate=0.1, burst=5, max_wait=0)
    second = SendRate(client, rate=0.1, burst=5, max_wait=0)
    taken = sum(bucket.reserve() is not None for _ in range(5) for bucket in (first, second))
    assert taken == 5


# --- in the delivery ------------------------------------------------------------------


@pytest.fixture
def limited(worker_app: Flask, monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    """The worker with EMAIL_SEND_RATE=0.2 (a token each 5 s), its bucket in memory."""
    server = fakeredis.FakeRedis()
    monkeypatch.setattr(redis.Redis, "from_url", lambda *args, **kwargs: server)
    settings: Settings = worker_app.config["SETTINGS"]
    worker_app.config["SETTINGS"] = settings.with_overrides(email_send_rate=0.2)
    return server


def test_over_the_rate_a_row_waits_for_the_relay_without_spending_an_attempt(
        worker_app: Flask, user: User, outbox, limited):
    first, second = outbox.add(), outbox.add()
    with worker_app.app_context():
        assert deliver(first).status == DeliveryStatus.SENT.value
        assert deliver(second).status == "deferred"  # the next token is 5 s away
    row = outbox.get(second)
    assert row.status == DeliveryStatus.QUEUED.value
    assert row.attempts == 0 and outbox.attempts(second) == []
    assert row.relay_after is not None and row.relay_after <= utcnow()  # due at the next sweep


def test_putting_back_leaves_claimed_and_finished_rows_alone(worker_app: Flask, outbox):
    now = utcnow()
    claimed = outbox.add(status=DeliveryStatus.SENDING.value,
                         lease_until=now + timedelta(seconds=30))
    sent = outbox.add(status=DeliveryStatus.SENT.value)
    with worker_app.app_context():
        send_rate.put_back(claimed)
        send_rate.put_back(sent)
    assert outbox.get(claimed).relay_after is None
    assert outbox.get(sent).relay_after is None


def test_without_redis_mail_goes_out_unlimited_with_one_log_line(
        worker_app: Flask, user: User, outbox, caplog: pytest.LogCaptureFixture):
    settings: Settings = worker_app.config["SETTINGS"]  # its REDIS_URL is a closed port
    worker_app.config["SETTINGS"] = settings.with_overrides(email_send_rate=1.0)
    delivery_id = outbox.add()
    with worker_app.app_context(), caplog.at_level(logging.WARNING, logger="worker"):
        assert deliver(delivery_id).status == DeliveryStatus.SENT.value
    [line] = [r.getMessage() for r in caplog.records if r.name == "worker.send_rate"]
    assert line == "send rate unavailable, sending without it error=ConnectionError"


def test_the_rate_is_off_unless_set():
    assert Settings.from_env({}).email_send_rate is None
    assert Settings.from_env({"EMAIL_SEND_RATE": "2.5"}).email_send_rate == 2.5
