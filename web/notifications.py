"""The "your password was changed" notice: an outbox row like any other email.

The row is added to the session by the code that changes the password and committed in
the same transaction, so a password never changes without its notice being recorded; it
is published once committed. The task carries the row id only; the email holds no password.
"""

from __future__ import annotations

from flask import current_app

from shared.contract import SEND_PASSWORD_CHANGED, DeliveryPayload
from shared.database import db
from shared.emails import mask_email, normalize_email
from shared.events import delivery_event
from shared.models import DeliveryKind, EmailDelivery
from web.publisher import publish_delivery


def record_password_changed_notice(email: str) -> EmailDelivery:
    """Add the notice to the current transaction; the caller commits."""
    delivery = EmailDelivery.new(DeliveryKind.PASSWORD_CHANGED, normalize_email(email))
    db.session.add(delivery)
    return delivery


def publish_password_changed_notice(delivery: EmailDelivery) -> bool:
    published = publish_delivery(
        current_app.extensions["celery"],
        SEND_PASSWORD_CHANGED,
        DeliveryPayload(delivery_id=delivery.id),
    )
    delivery_event("password_changed.queued", delivery.id, to=mask_email(delivery.email),
                   published=published)
    return published
