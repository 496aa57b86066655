"""Publish an outbox row to the worker, by task name, without ever blocking a request long.

If the broker is unreachable the row stays committed as `queued` and the outbox relay
sends it once the broker is back, so the user still gets the normal answer, quickly.
How long a failed publish may take is bounded twice: one quick retry here, and short
connection timeouts on the web tier's broker connection (`PUBLISH_TIMEOUT`, see
`shared.celery_factory.publisher_settings`).
"""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import KombuError, OperationalError
from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from shared.contract import EMAIL_QUEUE, DeliveryPayload, task_id_for
from shared.database import db
from shared.db_clock import db_now
from shared.models import EmailDelivery

log = logging.getLogger(__name__)

# One quick retry covers a dropped pooled connection; more would make the user wait.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}


def publish_delivery(celery: Celery, task_name: str, payload: DeliveryPayload) -> bool:
    """Enqueue the first attempt of a committed outbox row (task id `<id>-1`).

    When the broker is down: log, mark the row for the relay's next sweep, and return
    False instead of raising.
    """
    try:
        celery.send_task(
            task_name,
            kwargs=payload.as_kwargs(),
            kwargsrepr=payload.display(),
            argsrepr="()",
            task_id=task_id_for(payload.delivery_id, 1),
            retries=0,
            queue=EMAIL_QUEUE,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )
    except (OperationalError, KombuError, RedisError, OSError) as exc:
        log.warning(
            "publish failed delivery=%s error=%s; left queued for the outbox relay",
            payload.delivery_id,
            type(exc).__name__,
        )
        relay_soon(payload.delivery_id)
        return False
    return True


def relay_soon(delivery_id: str) -> None:
    """After a failed publish: ask the relay to send the row at its next sweep.

    Best effort: if even this fails, the relay still finds the row once it has waited
    `OUTBOX_STALE_AFTER`, so the request is answered normally either way.
    """
    try:
        db.session.execute(
            update(EmailDelivery).where(EmailDelivery.id == delivery_id)
            .values(relay_after=db_now())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("could not mark delivery=%s for the relay: %s", delivery_id,
                    type(exc).__name__)
