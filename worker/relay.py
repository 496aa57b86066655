"""The outbox relay: republish every unfinished row that no worker is about to take.

Every worker runs it (worker/relay_thread.py), about every `OUTBOX_RELAY_INTERVAL`
seconds. It is the one mechanism behind three guarantees: a row committed while the
broker was down (or by a web process killed before it published) still gets sent; a row
whose message was lost, or whose worker died mid-send, is sent again once its lease is
over; and a transient failure is retried when its backoff has passed
(`next_attempt_at`), with no message held by a worker meanwhile. A republished message
for a row someone else already took is a harmless no-op: the claim decides.

N workers do not sweep N times as often: a sweep starts by taking the short lease on the
`relay_sweep` row, one conditional UPDATE on the database's clock, and a worker that
finds it held skips its turn. Two sweeps that still overlap (a slow one outlived its
lease) cannot send twice either: taking a due row is itself a conditional UPDATE, and
the claim guards the send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from celery import Celery
from flask import current_app
from kombu.exceptions import KombuError, OperationalError
from redis.exceptions import RedisError
from sqlalchemy import Float, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shared.config import Settings
from shared.contract import EMAIL_QUEUE, DeliveryPayload, task_id_for
from shared.database import db
from shared.db_clock import db_now
from shared.events import delivery_event
from shared.models import RelaySweep
from worker import outbox
from worker.kinds import KINDS
from worker.retention import delete_ended_sign_ins, delete_finished

log = logging.getLogger(__name__)

SWEEP = "outbox"
BATCH = 500
RETENTION_BATCH = 500
# The sweep lease lasts this share of the interval: the next worker's turn (an interval
# later, give or take the jitter) finds it over, and a dead sweeper holds it only briefly.
LEASE_SHARE = 0.9
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                        "interval_max": 0.5}

_sweeps = RelaySweep.__table__
_TAKE_LEASE = (
    update(_sweeps)
    .where(_sweeps.c.name == SWEEP)
    .where(or_(_sweeps.c.lease_until.is_(None), _sweeps.c.lease_until < db_now()))
    .values(holder=bindparam("sweeper"),
            lease_until=db_now(bindparam("lease_seconds", type_=Float)))
    .returning(_sweeps.c.name)
)
_SWEPT = (
    update(_sweeps)
    .where(_sweeps.c.name == SWEEP, _sweeps.c.holder == bindparam("sweeper"))
    .values(last_swept_at=db_now())
)


@dataclass(frozen=True)
class RelayReport:
    published: int
    failed: int


@dataclass(frozen=True)
class SweepReport:
    relayed: RelayReport
    deleted: int


def publish(celery: Celery, task_name: str, delivery_id: str, attempt: int) -> None:
    """Queue attempt number `attempt` (1 for the first) of a row: see `task_id_for`."""
    payload = DeliveryPayload(delivery_id=delivery_id)
    celery.send_task(
        task_name, kwargs=payload.as_kwargs(), kwargsrepr=payload.display(), argsrepr="()",
        task_id=task_id_for(delivery_id, attempt), retries=attempt - 1,
        queue=EMAIL_QUEUE, retry=True, retry_policy=PUBLISH_RETRY_POLICY,
    )


def relay_due() -> RelayReport:
    settings: Settings = current_app.config["SETTINGS"]
    celery: Celery = current_app.extensions["celery"]
    due = outbox.take_due_for_relay(timedelta(seconds=settings.outbox_stale_after), BATCH)
    unpublished: list[str] = []
    for n, row in enumerate(due):
        kind = KINDS.get(row.kind)
        if kind is None:  # a worker that claims it dead-letters it; any task name will do
            kind = next(iter(KINDS.values()))
        try:
            publish(celery, kind.task_name, row.id, row.attempts + 1)
        except (OperationalError, KombuError, RedisError, OSError) as exc:
            # The broker is down: the rest would fail too, each after its own timeouts.
            unpublished = [left.id for left in due[n:]]
            log.warning("relay publish failed, %d row(s) left for the next sweep: %s",
                        len(unpublished), type(exc).__name__)
            break
        delivery_event("delivery.relayed", row.id, kind=row.kind, attempt=row.attempts + 1)
    outbox.relay_again_now(unpublished)
    return RelayReport(published=len(due) - len(unpublished), failed=len(unpublished))


def take_sweep_lease(holder: str, seconds: float) -> bool:
    """This worker's turn to sweep, for `seconds` on the database's clock: True if taken."""
    taken = db.session.execute(
        _TAKE_LEASE, {"sweeper": holder, "lease_seconds": seconds}
    ).first() is not None
    if not taken and db.session.scalar(select(_sweeps.c.name).where(_sweeps.c.name == SWEEP)) \
            is None:
        # Migration 0004 seeds the row; a schema made by create_all() (tests) has none.
        try:
            db.session.execute(insert(_sweeps).values(name=SWEEP))
            db.session.commit()
        except IntegrityError:  # another worker inserted it first
            db.session.rollback()
        return take_sweep_lease(holder, seconds)
    db.session.commit()
    return taken


def sweep(holder: str, retain: bool = True) -> SweepReport | None:
    """One sweep if it is this worker's turn: relay due rows and, when `retain`, delete
    finished rows past retention.

    None when another worker holds the sweep lease.
    """
    settings: Settings = current_app.config["SETTINGS"]
    if not take_sweep_lease(holder, LEASE_SHARE * settings.outbox_relay_interval):
        return None
    relayed = relay_due()
    deleted = 0
    if retain:
        deleted = delete_finished(timedelta(hours=settings.outbox_retention_hours),
                                  RETENTION_BATCH)
        delete_ended_sign_ins()
    db.session.execute(_SWEPT, {"sweeper": holder})
    db.session.commit()
    return SweepReport(relayed, deleted)
