"""State changes of an outbox row: a claim, then one outcome, each one transaction.

A worker *claims* a row before sending, with one conditional UPDATE, so two copies of the
same task (a redelivery, a relay) can never both send: the second finds the row claimed,
not yet due, or already finished, and does nothing. The claim's transaction stays open
until `open_attempt` records the attempt and commits, so the delivery's kind can do its
own writes (a reset mints its link generation) in the same commit. An attempt whose
worker died stays visible with no outcome.

These run once per email, so they are single Core statements on plain snapshots of the
row, not ORM objects: no identity map, no attribute reloads after a commit.

Which clock decides: the database's (`db_now()` inside each statement). A lease's end,
a retry's due time and whether a row is claimable are never computed from a worker's
clock, so a worker whose clock runs minutes ahead cannot take a row another still holds.
Functions that take `now` accept a datetime only so tests can ask "what about later?".
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, Text, and_, bindparam, func, insert, or_, select, update

from shared.database import db
from shared.db_clock import db_now
from shared.models import DeliveryAttempt, DeliveryStatus, EmailDelivery, UTCDateTime


def worker_name() -> str:
    """Host and process of this attempt (computed per call: prefork children fork later)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ClaimedRow:
    """What a worker needs of a row it has just claimed (`attempts` counts this one;
    `claimed_at` is the database's time of the claim)."""

    id: str
    kind: str
    email: str
    attempts: int
    created_at: datetime
    claimed_at: datetime


@dataclass(frozen=True)
class Claim:
    """A row this worker may send until its lease ends, and its open attempt record."""

    delivery: ClaimedRow
    attempt_id: int


_deliveries = EmailDelivery.__table__
_attempts = DeliveryAttempt.__table__
UNFINISHED = (DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value,
              DeliveryStatus.RETRYING.value)


def moment(now: datetime | None, seconds: float = 0.0) -> Any:
    """`seconds` after `now`; with no `now`, in SQL on the database's clock."""
    return db_now(seconds) if now is None else now + timedelta(seconds=seconds)


def claimable(now: Any = None):  # type: ignore[no-untyped-def]
    """Rows a worker may take at `now` (default: the database's now): waiting, due for
    a retry, or held by a dead claim."""
    now = db_now() if now is None else now
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
    .where(claimable())
    .values(
        status=DeliveryStatus.SENDING.value,
        attempts=_deliveries.c.attempts + 1,
        lease_until=db_now(bindparam("lease_seconds", type_=Float)),
        relay_after=None,
        updated_at=db_now(),
    )
    .returning(_deliveries.c.id, _deliveries.c.kind, _deliveries.c.email,
               _deliveries.c.attempts, _deliveries.c.created_at, db_now().label("now"))
)
_OPEN_ATTEMPT = insert(_attempts).values(started_at=db_now()).returning(_attempts.c.id)
_STATUS = select(_deliveries.c.status).where(_deliveries.c.id == bindparam("delivery_id"))
_CLOSE_DELIVERY = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("outcome"),
        lease_until=None,
        relay_after=None,
        updated_at=db_now(),
        next_attempt_at=db_now(bindparam("retry_in", type_=Float)),
        # Kept when the new value is NULL: an earlier error stays until a newer one.
        # A NULL offset makes db_now() NULL: no retry time, or sent_at left as it was.
        sent_at=func.coalesce(db_now(bindparam("sent_now", type_=Float)),
                              _deliveries.c.sent_at),
        last_error=func.coalesce(bindparam("error", type_=Text), _deliveries.c.last_error),
    )
    .returning(_deliveries.c.updated_at, _deliveries.c.next_attempt_at)
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


def take(delivery_id: str, lease: timedelta) -> ClaimedRow | None:
    """Mark the row `sending` for this worker, uncommitted; None if it is not ours to send.

    Commit with `open_attempt` (or roll back: the row is as it was).
    """
    row = db.session.execute(_TAKE, {
        "delivery_id": delivery_id, "lease_seconds": lease.total_seconds(),
    }).one_or_none()
    if row is None:
        db.session.rollback()
        return None
    return ClaimedRow(row.id, row.kind, row.email, row.attempts, row.created_at, row.now)


def open_attempt(row: ClaimedRow) -> Claim:
    """Record the attempt and commit the claim with it."""
    attempt_id = db.session.execute(
        _OPEN_ATTEMPT, {"delivery_id": row.id, "worker": worker_name()}
    ).scalar_one()
    db.session.commit()
    return Claim(row, attempt_id)


def claim(delivery_id: str, lease: timedelta) -> Claim | None:
    """Take the row and open its attempt in one commit (a claim with nothing else in it)."""
    row = take(delivery_id, lease)
    return None if row is None else open_attempt(row)


def status_of(delivery_id: str) -> str:
    return db.session.scalar(_STATUS, {"delivery_id": delivery_id}) or "missing"


def _close(claim: Claim, outcome: DeliveryStatus, error: str | None,
           retry_in: timedelta | None = None) -> None:
    closed = db.session.execute(_CLOSE_DELIVERY, {
        "delivery_id": claim.delivery.id, "outcome": outcome.value, "error": error,
        "retry_in": None if retry_in is None else retry_in.total_seconds(),
        "sent_now": 0.0 if outcome is DeliveryStatus.SENT else None,
    }).one()
    db.session.execute(_CLOSE_ATTEMPT, {
        "attempt_id": claim.attempt_id, "result": outcome.value, "closed_at": closed.updated_at,
        "reason": error, "retry_time": closed.next_attempt_at,
    })
    db.session.commit()


def finish(claim: Claim, status: DeliveryStatus, error: str | None = None) -> None:
    _close(claim, status, error)


def schedule_retry(claim: Claim, delay: timedelta, error: str) -> None:
    """Leave the row for the relay, which republishes it once `next_attempt_at` passes."""
    _close(claim, DeliveryStatus.RETRYING, error, retry_in=delay)


def due_for_relay(stale_after: timedelta, now: datetime | None = None):  # type: ignore[no-untyped-def]
    """Unfinished rows no worker is about to take: never published, lost, or due again.

    A queued row the web tier published is left alone until it has waited `stale_after`
    (its message is most likely still in the queue); one whose publish failed is due at
    once. After each republish the row rests for `stale_after` again, so a slow queue
    collects at most one extra message per row per period, and those are no-ops.
    Only unfinished statuses can match, so the index on (status, next_attempt_at)
    (migration 0005) keeps the sweep off the mass of finished rows.
    """
    at = moment(now)
    status = EmailDelivery.status
    relay_after = EmailDelivery.relay_after
    waiting = and_(
        status == DeliveryStatus.QUEUED.value,
        or_(relay_after.is_not(None),
            EmailDelivery.created_at <= moment(now, -stale_after.total_seconds())),
    )
    return and_(
        status.in_(UNFINISHED),  # what the (status, next_attempt_at) index serves
        or_(relay_after.is_(None), relay_after <= at),
        or_(waiting, and_(status != DeliveryStatus.QUEUED.value, claimable(at))),
    )


@dataclass(frozen=True)
class DueRow:
    """A row the relay took for republishing; `attempts` counts the claims so far."""

    id: str
    kind: str
    attempts: int


def take_due_for_relay(stale_after: timedelta, limit: int) -> list[DueRow]:
    """Mark up to `limit` due rows as relayed (one statement) and return them.

    The due condition is repeated on the UPDATE itself, so two relays running at once
    cannot both take the same row.
    """
    due = due_for_relay(stale_after)
    oldest = (
        select(EmailDelivery.id).where(due).order_by(EmailDelivery.created_at).limit(limit)
    )
    rows = db.session.execute(
        update(EmailDelivery)
        .where(EmailDelivery.id.in_(oldest.scalar_subquery()))
        .where(due)
        .values(relay_after=db_now(stale_after.total_seconds()),
                relays=EmailDelivery.relays + 1)
        .returning(EmailDelivery.id, EmailDelivery.kind, EmailDelivery.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return [DueRow(row.id, row.kind, row.attempts) for row in rows]


def relay_again_now(delivery_ids: list[str]) -> None:
    """A republish failed: make the rows due at the next sweep instead of a period later."""
    if not delivery_ids:
        return
    db.session.execute(
        update(EmailDelivery)
        .where(EmailDelivery.id.in_(delivery_ids))
        .values(relay_after=db_now())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
