"""Celery tasks, registered under the names in `shared.contract`.

Every email task runs the same delivery machine (worker/delivery.py); the row's kind
decides the message. None of them retries through Celery (no countdown/ETA messages):
a transient failure leaves the row `retrying`, and the relay republishes it when due.
The task still ends in the state Flower should show: RETRY for a transient failure
(raising `Retry` acknowledges the message without publishing another), FAILURE for a
dead letter, SUCCESS otherwise.
"""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import Retry

from shared.contract import EMAIL_QUEUE, SEND_PASSWORD_CHANGED, SEND_PASSWORD_RESET
from shared.models import DeliveryStatus
from worker.delivery import deliver


class TransientSendFailure(Exception):
    """Why an attempt will be repeated; the relay republishes the row when it is due."""


class DeadLettered(Exception):
    """The email will not be sent: the row says `failed` with this reason."""


def _deliver_for_flower(delivery_id: str) -> str:
    outcome = deliver(delivery_id)
    if outcome.status == DeliveryStatus.RETRYING.value:
        raise Retry(exc=TransientSendFailure(outcome.reason), when=outcome.retry_in)
    if outcome.status == DeliveryStatus.FAILED.value:
        raise DeadLettered(f"delivery {delivery_id}: {outcome.reason}")
    return outcome.status


@shared_task(name=SEND_PASSWORD_RESET, queue=EMAIL_QUEUE)
def send_password_reset(delivery_id: str) -> str:
    return _deliver_for_flower(delivery_id)


@shared_task(name=SEND_PASSWORD_CHANGED, queue=EMAIL_QUEUE)
def send_password_changed(delivery_id: str) -> str:
    return _deliver_for_flower(delivery_id)

