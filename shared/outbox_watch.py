"""What tells a stalled outbox from a quiet one, read by `/healthz` and `/metrics` alike.

Two numbers, both measured with the database's clock (shared/db_clock.py):

- how long the oldest *due* row has waited with nobody working on it: queued since it was
  created, retrying since `next_attempt_at` passed, sending since its worker's lease ended.
  A row backing off before a retry, or held by a live claim, is not waiting.
- how long ago the relay last finished a sweep (`relay_sweep.last_swept_at`); None when no
  sweep was ever recorded (a new install, before the first worker's first sweep).

Counting only `queued` rows, as a first version did, missed the stall that matters most: a
relay that stopped, leaving retries and dead workers' claims due forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from shared.database import db
from shared.db_clock import db_now
from shared.models import DeliveryStatus, EmailDelivery, RelaySweep

SWEEP_NAME = "outbox"
UNFINISHED = (DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value,
              DeliveryStatus.SENDING.value)


def waiting_since(now: Any) -> ColumnElement[datetime]:
    """When a row became due and nobody has taken it since; NULL while it is not due."""
    c = EmailDelivery.__table__.c
    return case(
        (c.status == DeliveryStatus.QUEUED.value, c.created_at),
        (and_(c.status == DeliveryStatus.RETRYING.value,
              or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now)),
         func.coalesce(c.next_attempt_at, c.updated_at)),
        (and_(c.status == DeliveryStatus.SENDING.value, c.lease_until < now), c.lease_until),
        else_=None,
    )


@dataclass(frozen=True)
class OutboxWatch:
    due: int  # rows due that nobody works on
    oldest_due_seconds: float | None  # None when no row is due
    last_sweep_seconds: float | None  # None when the relay never recorded a sweep

    def stalls(self, stall_after: float) -> list[str]:
        """Why the outbox counts as stalled after `stall_after` seconds (empty: it does not)."""
        reasons = []
        if self.oldest_due_seconds is not None and self.oldest_due_seconds > stall_after:
            reasons.append(f"an email has been due for {self.oldest_due_seconds:.0f} s")
        if self.last_sweep_seconds is not None and self.last_sweep_seconds > stall_after:
            reasons.append(f"the relay last swept {self.last_sweep_seconds:.0f} s ago")
        return reasons


def _seconds_since(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def watch_outbox() -> OutboxWatch:
    """One read of the outbox's state (raises SQLAlchemyError when the database fails)."""
    now = db_now()
    waiting = waiting_since(now)
    last_sweep = (select(RelaySweep.last_swept_at).where(RelaySweep.name == SWEEP_NAME)
                  .scalar_subquery())
    row = db.session.execute(
        select(now.label("now"), func.min(waiting).label("oldest"),
               func.count(waiting).label("due"), last_sweep.label("last_sweep"))
        .where(EmailDelivery.status.in_(UNFINISHED))
    ).one()
    return OutboxWatch(due=int(row.due), oldest_due_seconds=_seconds_since(row.now, row.oldest),
                       last_sweep_seconds=_seconds_since(row.now, row.last_sweep))
