"""State changes of an outbox row: a claim, then one outcome, each one transaction.

A worker *claims* a row before sending, with one conditional UPDATE, so two copies of the
same task (a redelivery, a relay) can never both send: the second finds the row claimed,
not yet due, or already finished, and does nothing. The claim's transaction stays open
until `open_attempt` records the attempt and commits, so the delivery's kind can do its
own writes (a reset mints its link generation) in the same commit. An attempt whose
worker died stays visible with no outcome.

These run once per email, so they are single Core statements on plain snapshots of the
row, not ORM objects: no identity map, no attribute reloads after a commit.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, and_, bindparam, func, insert, or_, select, update

from shared.clock import utcnow
from shared.database import db
from shared.models import DeliveryAttempt, DeliveryStatus, EmailDelivery, UTCDateTime


def worker_name() -> str:
    """Host and process of this attempt (computed per call: prefork children fork later)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ClaimedRow:
    """What a worker needs of a row it has just claimed (`attempts` counts this one)."""

    id: str
    kind: str
    email: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Claim:
    """A row this worker may send until its lease ends, and its open attempt record."""

    delivery: ClaimedRow
    attempt_id: int


_deliveries = EmailDelivery.__table__
_attempts = DeliveryAttempt.__table__


def claimable(now: Any):  # type: ignore[no-untyped-def]
    """Rows a worker may take at `now` (a datetime or a bound parameter): waiting, due for
    a retry, or held by a dead claim."""
    c = _deliveries.c
    return or_(
        c.status == DeliveryStatus.QUEUED.value,
        and_(
            c.status == DeliveryStatus.RETRYING.value,
            or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
        ),
        and_(c.status == DeliveryStatus.SENDING.value, c.lease_until < now),
    )


# The statements each email runs, built once (they run hundreds of times a second).
_TAKE = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("delivery_id"))
    .where(claimable(bindparam("now", type_=UTCDateTime)))
    .values(
        status=DeliveryStatus.SENDING.value,
        attempts=_deliveries.c.attempts + 1,
        lease_until=bindparam("lease_end", type_=UTCDateTime),
        relay_after=None,
        updated_at=bindparam("claimed_at", type_=UTCDateTime),
    )
    .returning(_deliveries.c.id, _deliveries.c.kind, _deliveries.c.email,
               _deliveries.c.attempts, _deliveries.c.created_at)
)
_OPEN_ATTEMPT = insert(_attempts).returning(_attempts.c.id)
_STATUS = select(_deliveries.c.status).where(_deliveries.c.id == bindparam("delivery_id"))
_CLOSE_DELIVERY = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("outcome"),
        lease_until=None,
        relay_after=None,
        updated_at=bindparam("closed_at", type_=UTCDateTime),
        next_attempt_at=bindparam("retry_at", type_=UTCDateTime),
        # Kept when the new value is NULL: an earlier error stays until a newer one.
        sent_at=func.coalesce(bindparam("sent_time", type_=UTCDateTime), _deliveries.c.sent_at),
        last_error=func.coalesce(bindparam("error", type_=Text), _deliveries.c.last_error),
    )
)
_CLOSE_ATTEMPT = (
    update(_attempts)
    .where(_attempts.c.id == bindparam("attempt_id"))
    .values(
        finished_at=bindparam("closed_at", type_=UTCDateTime),
        outcome=bindparam("result"),
        error=bindparam("reason"),
        retry_at=bindparam("retry_time", type_=UTCDateTime),
    )
)


def take(delivery_id: str, lease: timedelta, now: datetime) -> ClaimedRow | None:
    """Mark the row `sending` for this worker, uncommitted; None if it is not ours to send.

    Commit with `open_attempt` (or roll back: the row is as it was).
    """
    row = db.session.execute(_TAKE, {
        "delivery_id": delivery_id, "now": now, "lease_end": now + lease, "claimed_at": now,
    }).one_or_none()
    if row is None:
        db.session.rollback()
        return None
    return ClaimedRow(row.id, row.kind, row.email, row.attempts, row.created_at)


def open_attempt(row: ClaimedRow, now: datetime) -> Claim:
    """Record the attempt and commit the claim with it."""
    attempt_id = db.session.execute(
        _OPEN_ATTEMPT, {"delivery_id": row.id, "worker": worker_name(), "started_at": now}
    ).scalar_one()
    db.session.commit()
    return Claim(row, attempt_id)


def claim(delivery_id: str, lease: timedelta, now: datetime | None = None) -> Claim | None:
    """Take the row and open its attempt in one commit (a claim with nothing else in it)."""
    now = now or utcnow()
    row = take(delivery_id, lease, now)
    return None if row is None else open_attempt(row, now)


def status_of(delivery_id: str) -> str:
    return db.session.scalar(_STATUS, {"delivery_id": delivery_id}) or "missing"


def _close(claim: Claim, outcome: DeliveryStatus, error: str | None,
           retry_in: timedelta | None = None) -> None:
    now = utcnow()
    retry_at = None if retry_in is None else now + retry_in
    db.session.execute(_CLOSE_DELIVERY, {
        "delivery_id": claim.delivery.id, "outcome": outcome.value, "closed_at": now,
        "retry_at": retry_at, "error": error,
        "sent_time": now if outcome is DeliveryStatus.SENT else None,
    })
    db.session.execute(_CLOSE_ATTEMPT, {
        "attempt_id": claim.attempt_id, "result": outcome.value, "closed_at": now,
        "reason": error, "retry_time": retry_at,
    })
    db.session.commit()


def finish(claim: Claim, status: DeliveryStatus, error: str | None = None) -> None:
    _close(claim, status, error)


def schedule_retry(claim: Claim, delay: timedelta, error: str) -> None:
    """Leave the row for the relay, which republishes it once `next_attempt_at` passes."""
    _close(claim, DeliveryStatus.RETRYING, error, retry_in=delay)


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
