"""State changes of an outbox row, each one a single committed statement.

A worker *claims* a row before sending, with one conditional UPDATE, so two copies of the
same task (a redelivery, a relay) can never both send: the second finds the row claimed
or already sent and does nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update

from shared.clock import utcnow
from shared.database import db
from shared.models import DeliveryStatus, EmailDelivery

CLAIMABLE = (DeliveryStatus.QUEUED.value, DeliveryStatus.RETRYING.value)


def claim(delivery_id: str, lease: timedelta, now: datetime | None = None) -> EmailDelivery | None:
    """Mark the row `sending` for this worker, or return None if it is not ours to send."""
    now = now or utcnow()
    stale_claim = (EmailDelivery.status == DeliveryStatus.SENDING.value) & (
        EmailDelivery.lease_until < now
    )
    result = db.session.execute(
        update(EmailDelivery)
        .where(EmailDelivery.id == delivery_id)
        .where(or_(EmailDelivery.status.in_(CLAIMABLE), stale_claim))
        .values(
            status=DeliveryStatus.SENDING.value,
            attempts=EmailDelivery.attempts + 1,
            lease_until=now + lease,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return db.session.get(EmailDelivery, delivery_id, populate_existing=True)


def finish(delivery: EmailDelivery, status: DeliveryStatus, error: str | None = None) -> None:
    now = utcnow()
    delivery.status = status.value
    delivery.lease_until = None
    delivery.next_attempt_at = None
    delivery.updated_at = now
    if status is DeliveryStatus.SENT:
        delivery.sent_at = now
    if error is not None:
        delivery.last_error = error
    db.session.commit()


def schedule_retry(delivery: EmailDelivery, delay: timedelta, error: str) -> None:
    now = utcnow()
    delivery.status = DeliveryStatus.RETRYING.value
    delivery.lease_until = None
    delivery.next_attempt_at = now + delay
    delivery.updated_at = now
    delivery.last_error = error
    db.session.commit()
