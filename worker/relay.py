"""The outbox relay: republish every unfinished row that no worker is about to take.

Beat runs it every `OUTBOX_RELAY_INTERVAL` seconds. It is the one mechanism behind three
guarantees: a row committed while the broker was down (or by a web process killed before
it published) still gets sent; a row whose message was lost, or whose worker died
mid-send, is sent again once its lease is over; and a transient failure is retried when
its backoff has passed (`next_attempt_at`), with no message held by a worker meanwhile.
A republished message for a row someone else already took is a harmless no-op: the
claim decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from celery import Celery
from flask import current_app
from kombu.exceptions import KombuError, OperationalError
from redis.exceptions import RedisError

from shared.clock import utcnow
from shared.config import Settings
from shared.contract import EMAIL_QUEUE, DeliveryPayload
from shared.events import delivery_event
from worker import outbox
from worker.kinds import KINDS

log = logging.getLogger(__name__)

BATCH = 500
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                        "interval_max": 0.5}


@dataclass(frozen=True)
class RelayReport:
    published: int
    failed: int


def publish(celery: Celery, task_name: str, delivery_id: str) -> None:
    payload = DeliveryPayload(delivery_id=delivery_id)
    celery.send_task(
        task_name, kwargs=payload.as_kwargs(), kwargsrepr=payload.display(), argsrepr="()",
        queue=EMAIL_QUEUE, retry=True, retry_policy=PUBLISH_RETRY_POLICY,
    )


def relay_due() -> RelayReport:
    settings: Settings = current_app.config["SETTINGS"]
    celery: Celery = current_app.extensions["celery"]
    now = utcnow()
    due = outbox.take_due_for_relay(now, timedelta(seconds=settings.outbox_stale_after), BATCH)
    unpublished: list[str] = []
    for delivery_id, kind_name in due:
        kind = KINDS.get(kind_name)
        if kind is None:  # a worker that claims it dead-letters it; any task name will do
            kind = next(iter(KINDS.values()))
        try:
            publish(celery, kind.task_name, delivery_id)
        except (OperationalError, KombuError, RedisError, OSError) as exc:
            log.warning("relay publish failed delivery=%s error=%s", delivery_id,
                        type(exc).__name__)
            unpublished.append(delivery_id)
            continue
        delivery_event("delivery.relayed", delivery_id, kind=kind_name)
    outbox.relay_again_now(unpublished, utcnow())
    return RelayReport(published=len(due) - len(unpublished), failed=len(unpublished))
