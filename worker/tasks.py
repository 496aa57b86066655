"""Celery tasks, registered under the names in `shared.contract`."""

from __future__ import annotations

from celery import Task, shared_task

from shared.contract import EMAIL_QUEUE, SEND_PASSWORD_RESET
from worker.delivery import deliver_password_reset


@shared_task(name=SEND_PASSWORD_RESET, bind=True, queue=EMAIL_QUEUE, max_retries=None)
def send_password_reset(self: Task, delivery_id: str) -> str:
    outcome = deliver_password_reset(delivery_id)
    if outcome.retry_in is not None:
        # The row says `retrying`; this message brings the task back when it is due.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status
