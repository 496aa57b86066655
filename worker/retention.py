"""Retention: finished outbox rows, and their attempts, are deleted once they are old.

Run from the relay's sweep. Each batch is its own short transaction (a DELETE of a few
hundred rows), so a backlog of a million old rows never holds locks on the outbox for
long, and a sweep interrupted halfway has still deleted whole batches. The age is
measured by the database's clock, like every other age of the outbox.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select

from shared.database import db
from shared.db_clock import db_now
from shared.models import (
    FINAL_STATUSES,
    DeliveryAttempt,
    DeliveryStatus,
    EmailDelivery,
    LoginSession,
)

# Every status a row never leaves by itself: throttled rows are never sent either.
FINISHED = tuple(status.value for status in (*FINAL_STATUSES, DeliveryStatus.THROTTLED))


def delete_finished(retention: timedelta, batch: int = 500) -> int:
    """Delete finished rows last changed more than `retention` ago; return how many."""
    cutoff = db.session.scalar(select(db_now())) - retention
    db.session.commit()
    # updated_at is when the row last changed: its final state, or its sending (sent_at).
    finished_before = (EmailDelivery.status.in_(FINISHED)
                       & (func.coalesce(EmailDelivery.updated_at, EmailDelivery.sent_at)
                          < cutoff))
    deleted = 0
    while True:
        oldest = select(EmailDelivery.id).where(finished_before).limit(batch)
        # The condition is repeated on the DELETE: a row an operator queued again
        # (`deliveries retry`) between the two is no longer finished, and stays.
        ids = db.session.scalars(
            delete(EmailDelivery)
            .where(EmailDelivery.id.in_(oldest.scalar_subquery()), finished_before)
            .returning(EmailDelivery.id)
            .execution_options(synchronize_session=False)
        ).all()
        if ids:
            # ON DELETE CASCADE removes them already where foreign keys are enforced
            # (PostgreSQL; SQLite with PRAGMA foreign_keys, see shared/database.py).
            db.session.execute(delete(DeliveryAttempt)
                               .where(DeliveryAttempt.delivery_id.in_(ids))
                               .execution_options(synchronize_session=False))
        db.session.commit()
        deleted += len(ids)
        if len(ids) < batch:
            return deleted


def delete_ended_sign_ins() -> int:
    """Delete the rows of sign-ins that ran out or were ended by a version bump.

    They no longer sign anyone in (the web's user loader checks both), so this only keeps
    the table to the browsers still signed in; `flask sessions purge` does the same by hand.
    """
    deleted = LoginSession.purge_ended(db.session.scalar(select(db_now())))
    db.session.commit()
    return deleted
