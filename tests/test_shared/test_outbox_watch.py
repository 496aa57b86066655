"""What health and metrics call a stall: due rows nobody takes, a relay that stopped sweeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from support.factories import add_delivery, record_sweep

from shared.clock import utcnow
from shared.database import db
from shared.db_clock import db_now
from shared.models import DeliveryStatus
from shared.outbox_watch import OutboxWatch, watch_outbox


def watch(app: Flask) -> OutboxWatch:
    with app.app_context():
        return watch_outbox()


def test_the_database_clock_reads_as_an_aware_utc_time(app: Flask):
    with app.app_context():
        now = db.session.scalar(db.select(db_now()))
    assert now.utcoffset() == timedelta(0)
    assert abs((now - utcnow()).total_seconds()) < 5


def test_an_empty_outbox_with_no_sweep_yet_is_quiet_not_stalled(app: Flask):
    found = watch(app)
    assert found == OutboxWatch(due=0, oldest_due_seconds=None, last_sweep_seconds=None)
    assert found.stalls(120) == []


def test_rows_that_nobody_works_on_count_from_when_they_became_due(app: Flask):
    now = utcnow()
    add_delivery(app, DeliveryStatus.QUEUED, created_at=now - timedelta(seconds=30))
    add_delivery(app, DeliveryStatus.RETRYING, next_attempt_at=now - timedelta(seconds=200))
    add_delivery(app, DeliveryStatus.SENDING, lease_until=now - timedelta(seconds=90))
    found = watch(app)
    assert found.due == 3
    assert found.oldest_due_seconds == pytest.approx(200, abs=10)


@pytest.mark.parametrize("status, fields", [
    (DeliveryStatus.RETRYING, {"next_attempt_at": timedelta(seconds=60)}),  # backing off
    (DeliveryStatus.SENDING, {"lease_until": timedelta(seconds=20)}),  # a live claim
    (DeliveryStatus.SENT, {}),
    (DeliveryStatus.FAILED, {}),
    (DeliveryStatus.THROTTLED, {}),
])
def test_rows_waiting_for_good_reason_or_finished_are_not_due(app: Flask, status, fields):
    old = utcnow() - timedelta(hours=1)
    add_delivery(app, status, created_at=old, updated_at=old,
                 **{name: utcnow() + delta for name, delta in fields.items()})
    assert watch(app) == OutboxWatch(due=0, oldest_due_seconds=None, last_sweep_seconds=None)


def test_a_relay_that_stopped_sweeping_is_a_stall_even_with_nothing_due(app: Flask):
    record_sweep(app, utcnow() - timedelta(minutes=10))
    found = watch(app)
    assert found.last_sweep_seconds == pytest.approx(600, abs=10)
    assert found.stalls(120) == ["the relay last swept 600 s ago"]
    record_sweep(app, utcnow() - timedelta(seconds=3))
    assert watch(app).stalls(120) == []


def test_a_due_row_past_the_threshold_is_a_stall(app: Flask):
    add_delivery(app, DeliveryStatus.QUEUED, created_at=utcnow() - timedelta(seconds=300))
    [reason] = watch(app).stalls(120)
    assert reason.startswith("an email has been due for 3")
    assert watch(app).stalls(1000) == []
