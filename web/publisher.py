"""Publish an outbox row to the worker, by task name, without ever blocking a request long.

If the broker is unreachable the row stays committed as `queued` and the outbox sweep sends
it later, so the user still gets the normal answer, quickly.
"""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import KombuError, OperationalError
from redis.exceptions import RedisError

from shared.contract import EMAIL_QUEUE, DeliveryPayload

log = logging.getLogger(__name__)

# One quick retry covers a dropped pooled connection; more would make the user wait.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}


def publish_delivery(celery: Celery, task_name: str, payload: DeliveryPayload) -> bool:
    """Enqueue the task; return False (and log) instead of raising when the broker is down."""
    try:
        celery.send_task(
            task_name,
            kwargs=payload.as_kwargs(),
            kwargsrepr=payload.display(),
            argsrepr="()",
            queue=EMAIL_QUEUE,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )
    except (OperationalError, KombuError, RedisError, OSError) as exc:
        log.warning(
            "publish failed delivery=%s error=%s; left queued for the outbox sweep",
            payload.delivery_id,
            type(exc).__name__,
        )
        return False
    return True
