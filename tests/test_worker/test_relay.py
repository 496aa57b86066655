"""The outbox relay republishes exactly the rows no worker is about to take."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import fakeredis
from flask import Flask

from shared.clock import utcnow
from shared.database import db
from shared.models import DeliveryKind, EmailDelivery
from worker import outbox as outbox_states
from worker.relay import relay_due
from worker.tasks import relay_outbox

STALE = timedelta(seconds=30)  # Settings().outbox_stale_after


def queued(broker: fakeredis.FakeRedis) -> list[tuple[str, str]]:
    """(task name, delivery id) of every message waiting in the email queue."""
    found = []
    for raw in broker.lrange("email", 0, -1):
        message = json.loads(raw)
        kwargs = json.loads(base64.b64decode(message["body"]))[1]
        found.append((message["headers"]["task"], kwargs["delivery_id"]))
    return found


def test_relays_what_is_stuck_and_leaves_what_is_on_its_way(worker_app: Flask, outbox,
                                                            fake_broker):
    now = utcnow()
    old = now - 2 * STALE
    due = {
        "publish failed": outbox.add("a@example.com", relay_after=now),
        "never picked up": outbox.add("b@example.com", created_at=old),
        "retry due": outbox.add("c@example.com", status="retrying",
                                next_attempt_at=now - timedelta(seconds=1)),
        "worker died": outbox.add("d@example.com", status="sending",
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
    messages = queued(fake_broker)
    assert sorted(delivery_id for _, delivery_id in messages) == sorted(due.values())
    tasks = dict((delivery_id, task) for task, delivery_id in messages)
    assert tasks[due["notice"]] == "email.send_password_changed"
    assert tasks[due["worker died"]] == "email.send_password_reset"
    for delivery_id in due.values():
        row = outbox.get(delivery_id)
        assert row.relays == 1 and row.relay_after > now
    for delivery_id in not_due.values():
        assert outbox.get(delivery_id).relays == 0


def test_a_relayed_row_rests_before_it_is_relayed_again(worker_app: Flask, outbox,
                                                        fake_broker):
    delivery_id = outbox.add(relay_after=utcnow())
    with worker_app.app_context():
        assert relay_outbox.run() == 1
        assert relay_outbox.run() == 0
    assert len(queued(fake_broker)) == 1
    outbox.update(delivery_id, relay_after=utcnow() - timedelta(seconds=1))
    with worker_app.app_context():
        assert relay_outbox.run() == 1
    assert outbox.get(delivery_id).relays == 2


def test_two_relays_at_once_take_each_row_once(worker_app: Flask, outbox):
    ids = [outbox.add(f"u{n}@example.com", relay_after=utcnow()) for n in range(5)]
    now = utcnow()
    with worker_app.app_context():
        first = outbox_states.take_due_for_relay(now, STALE, limit=3)
        second = outbox_states.take_due_for_relay(now, STALE, limit=10)
    assert len(first) == 3 and len(second) == 2
    assert sorted(i for i, _ in first + second) == sorted(ids)


def test_a_failed_republish_is_due_again_at_the_next_sweep(worker_app: Flask, outbox,
                                                           monkeypatch):
    from kombu.exceptions import OperationalError

    delivery_id = outbox.add(relay_after=utcnow())

    def broker_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(worker_app.extensions["celery"], "send_task", broker_down)
    with worker_app.app_context():
        report = relay_due()
    assert (report.published, report.failed) == (0, 1)
    row = outbox.get(delivery_id)
    assert row.relay_after <= utcnow()


def test_claim_clears_the_relay_mark_so_a_dead_claim_is_relayed_at_lease_end(
        worker_app: Flask, outbox):
    delivery_id = outbox.add(relay_after=utcnow() + timedelta(seconds=30))
    with worker_app.app_context():
        claim = outbox_states.claim(delivery_id, timedelta(seconds=5))
        assert claim is not None
        later = utcnow() + timedelta(seconds=6)
        due = db.session.scalars(
            db.select(EmailDelivery.id).where(outbox_states.due_for_relay(later, STALE))
        ).all()
    assert due == [delivery_id]
