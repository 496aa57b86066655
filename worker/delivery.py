"""Turn one outbox row into at most one sent email.

The steps: claim the row, decide whether there is anything to send (an account, a link
that is still worth sending), mint the token, render, send, record the outcome. What
happens on failure is decided by `smtp_errors.classify` and the retry policy below.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from shared.clock import utcnow
from shared.config import Settings
from shared.contract import reset_password_url
from shared.database import db
from shared.emails import mask_email
from shared.events import delivery_event
from shared.models import DeliveryStatus, EmailDelivery, User
from shared.tokens import issue_reset_token
from worker import outbox, smtp
from worker.rendering import password_reset_message
from worker.smtp_errors import classify

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 60.0
# A link with less life left than this is not worth sending: it would die in the inbox.
MIN_LINK_LIFETIME = timedelta(seconds=60)


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter, capped: 2, 4, 8 ... 60 s at most."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def deliver_password_reset(delivery_id: str) -> Outcome:
    settings: Settings = current_app.config["SETTINGS"]
    lease = timedelta(seconds=settings.task_time_limit + 5)
    delivery = outbox.claim(delivery_id, lease)
    if delivery is None:
        current = db.session.get(EmailDelivery, delivery_id)
        status = current.status if current else "missing"
        delivery_event("delivery.skipped", delivery_id, status=status)
        return Outcome(status)

    expires_at = delivery.created_at + timedelta(minutes=settings.reset_token_minutes)
    if expires_at - utcnow() < MIN_LINK_LIFETIME:
        outbox.finish(delivery, DeliveryStatus.EXPIRED, "link would expire before delivery")
        delivery_event("delivery.expired", delivery.id, level=logging.WARNING)
        return Outcome(DeliveryStatus.EXPIRED.value)

    user = User.find_for_reset(delivery.email)
    if user is None:
        outbox.finish(delivery, DeliveryStatus.NO_ACCOUNT)
        delivery_event("delivery.no_account", delivery.id)
        return Outcome(DeliveryStatus.NO_ACCOUNT.value)

    token = issue_reset_token(
        settings.secret_key, user.id, user.password_hash, ttl=expires_at - delivery.created_at,
        now=delivery.created_at, generation=User.bump_reset_generation(user.id),
    )
    link = reset_password_url(settings.link_base_url, token)
    minutes_left = max(1, math.ceil((expires_at - utcnow()).total_seconds() / 60))
    message = password_reset_message(user, link, minutes_left)
    try:
        smtp.send(message)
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none is dropped
        return _record_failure(delivery, exc)
    outbox.finish(delivery, DeliveryStatus.SENT)
    delivery_event("delivery.sent", delivery.id, to=mask_email(user.email),
                   attempt=delivery.attempts)
    return Outcome(DeliveryStatus.SENT.value)


def _record_failure(delivery: EmailDelivery, exc: BaseException) -> Outcome:
    failure = classify(exc)
    if not failure.transient:
        outbox.finish(delivery, DeliveryStatus.FAILED, failure.reason)
        delivery_event("delivery.dead", delivery.id, level=logging.ERROR,
                       attempt=delivery.attempts, reason=failure.reason)
        return Outcome(DeliveryStatus.FAILED.value)
    if delivery.attempts >= MAX_ATTEMPTS:
        reason = f"gave up after {delivery.attempts} attempts: {failure.reason}"
        outbox.finish(delivery, DeliveryStatus.FAILED, reason)
        delivery_event("delivery.dead", delivery.id, level=logging.ERROR,
                       attempt=delivery.attempts, reason=reason)
        return Outcome(DeliveryStatus.FAILED.value)
    delay = backoff_seconds(delivery.attempts)
    outbox.schedule_retry(delivery, timedelta(seconds=delay), failure.reason)
    delivery_event("delivery.retrying", delivery.id, level=logging.WARNING,
                   attempt=delivery.attempts, reason=failure.reason, retry_in=f"{delay:.1f}s")
    return Outcome(DeliveryStatus.RETRYING.value, retry_in=delay)
