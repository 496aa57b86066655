"""State changes of an outbox row, each one a single committed transaction.

A worker *claims* a row before sending, with one conditional UPDATE, so two copies of the
same task (a redelivery, a relay) can never both send: the second finds the row claimed,
not yet due, or already finished, and does nothing. Each claim opens an attempt record
that the outcome completes, so an attempt whose worker died stays visible.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from shared.clock import utcnow
from shared.database import db
from shared.models import DeliveryAttempt, DeliveryStatus, EmailDelivery


def worker_name() -> str:
    """Host and process of this attempt (computed per call: prefork children fork later)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Claim:
    """A row this worker may send until `delivery.lease_until`, and its attempt record."""

    delivery: EmailDelivery
    attempt: DeliveryAttempt


def claimable(now: datetime):  # type: ignore[no-untyped-def]
    """Rows a worker may take now: waiting, due for a retry, or held by a dead claim."""
    status = EmailDelivery.status
    return or_(
        status == DeliveryStatus.QUEUED.value,
        and_(
            status == DeliveryStatus.RETRYING.value,
            or_(EmailDelivery.next_attempt_at.is_(None), EmailDelivery.next_attempt_at <= now),
        ),
        and_(status == DeliveryStatus.SENDING.value, EmailDelivery.lease_until < now),
    )


def claim(delivery_id: str, lease: timedelta, now: datetime | None = None) -> Claim | None:
    """Mark the row `sending` for this worker, or return None if it is not ours to send."""
    now = now or utcnow()
    result = db.session.execute(
        update(EmailDelivery)
        .where(EmailDelivery.id == delivery_id)
        .where(claimable(now))
        .values(
            status=DeliveryStatus.SENDING.value,
            attempts=EmailDelivery.attempts + 1,
            lease_until=now + lease,
            relay_after=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return None
    attempt = DeliveryAttempt(delivery_id=delivery_id, worker=worker_name(), started_at=now)
    db.session.add(attempt)
    db.session.commit()
    delivery = db.session.get(EmailDelivery, delivery_id, populate_existing=True)
    assert delivery is not None
    return Claim(delivery, attempt)


def _close_attempt(claim: Claim, outcome: DeliveryStatus, error: str | None, now: datetime) -> None:
    claim.attempt.finished_at = now
    claim.attempt.outcome = outcome.value
    claim.attempt.error = error


def finish(claim: Claim, status: DeliveryStatus, error: str | None = None) -> None:
    now = utcnow()
    delivery = claim.delivery
    delivery.status = status.value
    delivery.lease_until = None
    delivery.next_attempt_at = None
    delivery.relay_after = None
    delivery.updated_at = now
    if status is DeliveryStatus.SENT:
        delivery.sent_at = now
    if error is not None:
        delivery.last_error = error
    _close_attempt(claim, status, error, now)
    db.session.commit()


def schedule_retry(claim: Claim, delay: timedelta, error: str) -> None:
    """Leave the row for the relay, which republishes it once `next_attempt_at` passes."""
    now = utcnow()
    delivery = claim.delivery
    delivery.status = DeliveryStatus.RETRYING.value
    delivery.lease_until = None
    delivery.next_attempt_at = now + delay
    delivery.relay_after = None
    delivery.updated_at = now
    delivery.last_error = error
    _close_attempt(claim, DeliveryStatus.RETRYING, error, now)
    claim.attempt.retry_at = delivery.next_attempt_at
    db.session.commit()


def due_for_relay(now: datetime, stale_after: timedelta):  # type: ignore[no-untyped-def]
    """Unfinished rows no worker is about to take: never published, lost, or due again.

    A queued row the web tier published is left alone until it has waited `stale_after`
    (its message is most likely still in the queue); one whose publish failed is due at
    once. After each republish the row rests for `stale_after` again, so a slow queue
    collects at most one extra message per row per period, and those are no-ops.
    """
    status = EmailDelivery.status
    relay_after = EmailDelivery.relay_after
    waiting = and_(
        status == DeliveryStatus.QUEUED.value,
        or_(relay_after.is_not(None), EmailDelivery.created_at <= now - stale_after),
    )
    return and_(
        or_(relay_after.is_(None), relay_after <= now),
        or_(waiting, and_(status != DeliveryStatus.QUEUED.value, claimable(now))),
    )


def take_due_for_relay(now: datetime, stale_after: timedelta,
                       limit: int) -> list[tuple[str, str]]:
    """Mark up to `limit` due rows as relayed (one statement) and return (id, kind) pairs.

    The due condition is repeated on the UPDATE itself, so two relays running at once
    cannot both take the same row.
    """
    due = due_for_relay(now, stale_after)
    oldest = (
        select(EmailDelivery.id).where(due).order_by(EmailDelivery.created_at).limit(limit)
    )
    rows = db.session.execute(
        update(EmailDelivery)
        .where(EmailDelivery.id.in_(oldest.scalar_subquery()))
        .where(due)
        .values(relay_after=now + stale_after, relays=EmailDelivery.relays + 1)
        .returning(EmailDelivery.id, EmailDelivery.kind)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return [(row.id, row.kind) for row in rows]


def relay_again_now(delivery_ids: list[str], now: datetime) -> None:
    """A republish failed: make the rows due at the next sweep instead of a period later."""
    if not delivery_ids:
        return
    db.session.execute(
        update(EmailDelivery)
        .where(EmailDelivery.id.in_(delivery_ids))
        .values(relay_after=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
