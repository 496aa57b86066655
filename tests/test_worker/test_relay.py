"""The outbox relay republishes exactly the rows no worker is about to take, one sweep
per interval however many workers run it."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import fakeredis
import pytest
from flask import Flask
from kombu.exceptions import OperationalError
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError as DatabaseDown

from shared.clock import utcnow
from shared.database import db
from shared.db_clock import db_now
from shared.models import DeliveryKind, EmailDelivery, RelaySweep
from worker import outbox as outbox_states
from worker import relay_thread
from worker.relay import RelayReport, SweepReport, relay_due, sweep, take_sweep_lease

STALE = timedelta(seconds=30)  # Settings().outbox_stale_after


def queued(broker: fakeredis.FakeRedis) -> list[dict[str, object]]:
    """Task name, id, retries and delivery id of every message waiting in the queue."""
    found = []
    for raw in broker.lrange("email", 0, -1):
        message = json.loads(raw)
        kwargs = json.loads(base64.b64decode(message["body"]))[1]
        headers = message["headers"]
        found.append({"task": headers["task"], "id": headers["id"],
                      "retries": headers["retries"], "delivery_id": kwargs["delivery_id"]})
    return found


def database_now(app: Flask):  # type: ignore[no-untyped-def]
    with app.app_context():
        return db.session.scalar(select(db_now()))


def sweep_record(app: Flask) -> RelaySweep:
    with app.app_context():
        record = db.session.get(RelaySweep, "outbox")
        assert record is not None
        db.session.expunge(record)
        return record


def test_relays_what_is_stuck_and_leaves_what_is_on_its_way(worker_app: Flask, outbox,
                                                            fake_broker):
    now = utcnow()
    old = now - 2 * STALE
    due = {
        "publish failed": outbox.add("a@example.com", relay_after=now),
        "never picked up": outbox.add("b@example.com", created_at=old),
        "retry due": outbox.add("c@example.com", status="retrying", attempts=2,
                                next_attempt_at=now - timedelta(seconds=1)),
        "worker died": outbox.add("d@example.com", status="sending", attempts=1,
                                  lease_until=now - timedelta(seconds=1)),
        "notice": outbox.add("e@example.com", kind=DeliveryKind.PASSWORD_CHANGED,
                             created_at=old),
    }
    not_due = {
        "just published": outbox.add("f@example.com"),
        "retry later": outbox.add("g@example.com", status="retrying",
                                  next_attempt_at=now + timedelta(seconds=30)),
        "being sent": outbox.add("h@example.com", status="sending",
                                 lease_until=now + timedelta(seconds=20)),
        "relayed a moment ago": outbox.add("i@example.com", created_at=old,
                                           relay_after=now + timedelta(seconds=20)),
        "sent": outbox.add("j@example.com", status="sent", created_at=old),
        "dead": outbox.add("k@example.com", status="failed", created_at=old),
    }
    with worker_app.app_context():
        report = relay_due()
    assert report.published == len(due) and report.failed == 0
    messages = {m["delivery_id"]: m for m in queued(fake_broker)}
    assert sorted(messages) == sorted(due.values())
    assert messages[due["notice"]]["task"] == "email.send_password_changed"
    assert messages[due["worker died"]]["task"] == "email.send_password_reset"
    # One identity per attempt: `<delivery id>-<attempt>`, Flower's Retries column n - 1.
    retry = messages[due["retry due"]]
    assert (retry["id"], retry["retries"]) == (f"{due['retry due']}-3", 2)
    first = messages[due["never picked up"]]
    assert (first["id"], first["retries"]) == (f"{due['never picked up']}-1", 0)
    database_time = database_now(worker_app)
    for delivery_id in due.values():
        row = outbox.get(delivery_id)
        assert row.relays == 1 and row.relay_after > database_time
    for delivery_id in not_due.values():
        assert outbox.get(delivery_id).relays == 0


def test_a_relayed_row_rests_before_it_is_relayed_again(worker_app: Flask, outbox,
                                                        fake_broker):
    delivery_id = outbox.add(relay_after=utcnow())
    with worker_app.app_context():
        assert relay_due().published == 1
        assert relay_due().published == 0
    assert len(queued(fake_broker)) == 1
    outbox.update(delivery_id, relay_after=utcnow() - timedelta(seconds=1))
    with worker_app.app_context():
        assert relay_due().published == 1
    assert outbox.get(delivery_id).relays == 2


def test_two_relays_at_once_take_each_row_once(worker_app: Flask, outbox):
    ids = [outbox.add(f"u{n}@example.com", relay_after=utcnow()) for n in range(5)]
    with worker_app.app_context():
        first = outbox_states.take_due_for_relay(STALE, limit=3)
        second = outbox_states.take_due_for_relay(STALE, limit=10)
    assert len(first) == 3 and len(second) == 2
    assert sorted(row.id for row in first + second) == sorted(ids)


def test_a_failed_republish_is_due_again_at_the_next_sweep(worker_app: Flask, outbox,
                                                           monkeypatch, caplog):
    ids = [outbox.add(f"u{n}@example.com", relay_after=utcnow()) for n in range(3)]
    tries = []

    def broker_down(*args, **kwargs):
        tries.append(kwargs["task_id"])
        raise OperationalError("connection refused")

    monkeypatch.setattr(worker_app.extensions["celery"], "send_task", broker_down)
    with caplog.at_level(logging.WARNING, logger="worker.relay"), worker_app.app_context():
        report = relay_due()
    assert (report.published, report.failed) == (0, 3)
    # The first failure ends the sweep's publishing: one try, one log line.
    assert len(tries) == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "worker.relay"]
    assert "3 row(s) left for the next sweep" in line
    for delivery_id in ids:
        assert outbox.get(delivery_id).relay_after <= database_now(worker_app)


def test_claim_clears_the_relay_mark_so_a_dead_claim_is_relayed_at_lease_end(
        worker_app: Flask, outbox):
    delivery_id = outbox.add(relay_after=utcnow() + timedelta(seconds=30))
    with worker_app.app_context():
        claim = outbox_states.claim(delivery_id, timedelta(seconds=5))
        assert claim is not None
        due = lambda moment: db.session.scalars(  # noqa: E731
            db.select(EmailDelivery.id).where(outbox_states.due_for_relay(STALE, moment))
        ).all()
        assert due(utcnow() + timedelta(seconds=4)) == []
        assert due(utcnow() + timedelta(seconds=6)) == [delivery_id]


def test_one_sweep_per_lease_however_many_workers_try(worker_app: Flask, outbox,
                                                      fake_broker):
    outbox.add(relay_after=utcnow())
    with worker_app.app_context():
        first = sweep("worker-a:1")
        second = sweep("worker-b:2")
    assert first is not None and first.relayed.published == 1
    assert second is None  # worker a's lease still runs
    record = sweep_record(worker_app)
    assert record.holder == "worker-a:1" and record.last_swept_at is not None
    assert record.last_swept_at <= database_now(worker_app) < record.lease_until

    # The lease ends (by the database's clock): the next worker to try sweeps.
    with worker_app.app_context():
        db.session.execute(update(RelaySweep).values(lease_until=db_now(-1)))
        db.session.commit()
        assert sweep("worker-b:2") is not None
    assert sweep_record(worker_app).holder == "worker-b:2"


def test_a_sweep_lease_is_as_long_as_asked_on_the_database_clock(worker_app: Flask):
    with worker_app.app_context():
        assert take_sweep_lease("worker-a:1", 20.0)  # inserts the row create_all lacks
        assert not take_sweep_lease("worker-b:2", 20.0)
    record = sweep_record(worker_app)
    remaining = (record.lease_until - database_now(worker_app)).total_seconds()
    assert 15 < remaining <= 20


def test_a_sweep_deletes_finished_rows_past_retention(worker_app: Flask, outbox, fake_broker):
    long_ago = utcnow() - timedelta(days=30)
    old_sent = outbox.add("old@example.com", status="sent", created_at=long_ago,
                          updated_at=long_ago)
    old_throttled = outbox.add("thr@example.com", status="throttled", created_at=long_ago,
                               updated_at=long_ago)
    old_unfinished = outbox.add("q@example.com", status="retrying", created_at=long_ago,
                                updated_at=long_ago,
                                next_attempt_at=utcnow() + timedelta(hours=1))
    recent_sent = outbox.add("new@example.com", status="sent")
    with worker_app.app_context():
        report = sweep("worker-a:1")
    assert report is not None and report.deleted == 2
    with worker_app.app_context():
        left = set(db.session.scalars(select(EmailDelivery.id)))
    assert left == {old_unfinished, recent_sent}
    assert old_sent not in left and old_throttled not in left


def test_a_failing_sweep_logs_one_line_and_the_next_one_runs(worker_app: Flask, outbox,
                                                             fake_broker, monkeypatch,
                                                             caplog: pytest.LogCaptureFixture):
    calls = []

    def database_down(holder: str, retain: bool = True):
        calls.append(holder)
        raise DatabaseDown("SELECT 1", {}, ConnectionRefusedError("refused"))

    loop = relay_thread.RelayLoop(worker_app, "worker-a:1")
    monkeypatch.setattr(relay_thread, "sweep", database_down)
    with caplog.at_level(logging.WARNING, logger="worker.relay_thread"):
        loop.sweep_once()
    [line] = [r for r in caplog.records if r.name == "worker.relay_thread"]
    assert "relay sweep failed" in line.getMessage() and "OperationalError" in line.getMessage()
    assert line.exc_info is None  # one line, no traceback

    monkeypatch.undo()
    delivery_id = outbox.add(relay_after=utcnow())
    loop.sweep_once()
    assert outbox.get(delivery_id).relays == 1


def test_the_relay_thread_sweeps_on_its_own_and_stops_when_asked(worker_app: Flask, outbox,
                                                                 fake_broker, monkeypatch):
    settings = worker_app.config["SETTINGS"].with_overrides(outbox_relay_interval=0.05)
    worker_app.config["SETTINGS"] = settings
    delivery_id = outbox.add(relay_after=utcnow())
    loop = relay_thread.RelayLoop(worker_app, "worker-a:1")
    loop.start()
    try:
        deadline = utcnow() + timedelta(seconds=10)
        while outbox.get(delivery_id).relays == 0 and utcnow() < deadline:
            pass
    finally:
        loop.stop()
    assert outbox.get(delivery_id).relays == 1
    assert not loop._thread.is_alive()


def test_retention_runs_at_most_once_a_minute_per_worker(worker_app: Flask, monkeypatch):
    """Retention reads every finished row kept: not at every sweep of the interval."""
    asked: list[bool] = []

    def recording_sweep(holder: str, retain: bool = True):
        asked.append(retain)
        return SweepReport(RelayReport(0, 0), 0)

    monkeypatch.setattr(relay_thread, "sweep", recording_sweep)
    loop = relay_thread.RelayLoop(worker_app, "worker-a:1")
    loop.sweep_once()
    loop.sweep_once()
    monkeypatch.setattr(relay_thread.time, "monotonic",
                        lambda: loop._retained_at + relay_thread.RETENTION_EVERY)
    loop.sweep_once()
    assert asked == [True, False, True]
