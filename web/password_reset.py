"""The web tier's whole part in a reset request: record it, then enqueue its id.

It does exactly this work whether or not anybody has the address, so neither the
answer nor its timing tells a visitor which addresses have accounts. A request over a rate
limit gets the same work too, recorded as `throttled`, which the worker never sends.
"""

from __future__ import annotations

from flask import current_app

from shared.contract import SEND_PASSWORD_RESET, DeliveryPayload
from shared.database import db
from shared.emails import mask_email, normalize_email
from shared.events import delivery_event
from shared.models import DeliveryKind, DeliveryStatus, EmailDelivery
from web.publisher import publish_delivery


def request_password_reset(email: str, throttled: bool = False) -> EmailDelivery:
    delivery = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, normalize_email(email))
    if throttled:
        delivery.status = DeliveryStatus.THROTTLED.value
    db.session.add(delivery)
    db.session.commit()
    published = publish_delivery(
        current_app.extensions["celery"],
        SEND_PASSWORD_RESET,
        DeliveryPayload(delivery_id=delivery.id),
    )
    delivery_event("reset.requested", delivery.id, to=mask_email(delivery.email),
                   published=published, status=delivery.status)
    return delivery
