"""Celery tasks, registered under the names in `shared.contract`.

Every email task runs the same delivery machine (worker/delivery.py); the row's kind
decides the message. None of them retries through Celery (no countdown/ETA messages):
a transient failure leaves the row `retrying`, and the relay republishes it when due.
"""

from __future__ import annotations

from celery import shared_task

from shared.contract import EMAIL_QUEUE, RELAY_OUTBOX, SEND_PASSWORD_CHANGED, SEND_PASSWORD_RESET
from worker.delivery import deliver
from worker.relay import relay_due


@shared_task(name=SEND_PASSWORD_RESET, queue=EMAIL_QUEUE)
def send_password_reset(delivery_id: str) -> str:
    return deliver(delivery_id).status


@shared_task(name=SEND_PASSWORD_CHANGED, queue=EMAIL_QUEUE)
def send_password_changed(delivery_id: str) -> str:
    return deliver(delivery_id).status


@shared_task(name=RELAY_OUTBOX, queue=EMAIL_QUEUE)
def relay_outbox() -> int:
    return relay_due().published
