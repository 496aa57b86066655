"""Turn one outbox row into at most one sent email, whatever its kind.

The steps: claim the row and, in the same transaction, let its kind decide whether there
is anything to send (an account, a link still worth sending); commit; build the message,
send, record the outcome.
What happens on failure is decided by `smtp_errors.classify` and the retry policy below;
a retry is a row in `retrying` with `next_attempt_at`, which the outbox relay republishes
when it is due (no countdown task: see shared/celery_factory.py).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from shared.config import Settings
from shared.emails import mask_email
from shared.events import delivery_event
from shared.models import DeliveryStatus
from worker import outbox, send_rate, smtp
from worker.kinds import KINDS, Skip
from worker.smtp_errors import classify


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None
    reason: str | None = None


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter, capped: base, 2*base, 4*base ... cap at most.

    The delay is drawn from the upper half of each step, so retries of many rows that
    failed together (an SMTP outage) spread out instead of arriving at once.
    """
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def deliver(delivery_id: str) -> Outcome:
    settings: Settings = current_app.config["SETTINGS"]
    if not send_rate.wait_for_slot(settings):  # over EMAIL_SEND_RATE: the relay brings it back
        send_rate.put_back(delivery_id)
        return Outcome("deferred")
    row = outbox.take(delivery_id, timedelta(seconds=settings.delivery_lease_seconds))
    if row is None:
        status = outbox.status_of(delivery_id)
        delivery_event("delivery.skipped", delivery_id, status=status)
        return Outcome(status)

    kind = KINDS.get(row.kind)
    if kind is None:
        return _dead(outbox.open_attempt(row), f"unknown kind {row.kind!r}")
    if row.attempts > settings.delivery_max_attempts:
        # The earlier attempts never reported back: their workers died mid-send.
        return _dead(outbox.open_attempt(row),
                     f"gave up after {row.attempts - 1} attempts that did not finish")

    recipient = kind.resolve(row, settings)
    claim = outbox.open_attempt(row)  # commits the claim with what resolve wrote
    if isinstance(recipient, Skip):
        outbox.finish(claim, recipient.status, recipient.reason)
        level = logging.WARNING if recipient.status is DeliveryStatus.EXPIRED else logging.INFO
        delivery_event(f"delivery.{recipient.status.value}", row.id, level=level,
                       kind=row.kind, reason=recipient.reason)
        return Outcome(recipient.status.value)

    message = kind.compose(row, recipient, settings)
    try:
        smtp.send(message)
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none is dropped
        return _record_failure(claim, exc, settings)
    outbox.finish(claim, DeliveryStatus.SENT)
    delivery_event("delivery.sent", row.id, kind=row.kind, to=mask_email(row.email),
                   attempt=row.attempts)
    return Outcome(DeliveryStatus.SENT.value)


def _dead(claim: outbox.Claim, reason: str) -> Outcome:
    """Dead letter: no more attempts. Loud, because a person will not get an email."""
    outbox.finish(claim, DeliveryStatus.FAILED, reason)
    delivery_event("delivery.dead", claim.delivery.id, level=logging.ERROR,
                   kind=claim.delivery.kind, attempt=claim.delivery.attempts, reason=reason)
    return Outcome(DeliveryStatus.FAILED.value, reason=reason)


def _record_failure(claim: outbox.Claim, exc: BaseException, settings: Settings) -> Outcome:
    delivery = claim.delivery
    failure = classify(exc)
    if not failure.transient:
        return _dead(claim, failure.reason)
    if delivery.attempts >= settings.delivery_max_attempts:
        return _dead(claim, f"gave up after {delivery.attempts} attempts: {failure.reason}")
    delay = backoff_seconds(delivery.attempts, settings.retry_backoff_base,
                            settings.retry_backoff_max)
    deadline = KINDS[delivery.kind].deadline(delivery, settings)
    # The database's time of the claim, not this worker's clock (rows compare with it).
    if deadline is not None and delivery.claimed_at + timedelta(seconds=delay) > deadline:
        reason = f"link would expire before the next attempt; last error: {failure.reason}"
        outbox.finish(claim, DeliveryStatus.EXPIRED, reason)
        delivery_event("delivery.expired", delivery.id, level=logging.WARNING,
                       kind=delivery.kind, attempt=delivery.attempts, reason=reason)
        return Outcome(DeliveryStatus.EXPIRED.value)
    outbox.schedule_retry(claim, timedelta(seconds=delay), failure.reason)
    delivery_event("delivery.retrying", delivery.id, level=logging.WARNING,
                   kind=delivery.kind, attempt=delivery.attempts, reason=failure.reason,
                   retry_in=f"{delay:.1f}s")
    return Outcome(DeliveryStatus.RETRYING.value, retry_in=delay, reason=failure.reason)
