"""Every worker relays: a thread in the worker's main process sweeps the outbox.

There is no beat and no singleton to keep alive: `make worker`, run any number of times,
is the whole of the worker tier. Each worker's main process tries a sweep every
`OUTBOX_RELAY_INTERVAL` seconds, jittered so N workers do not try in step, and the sweep
lease (worker/relay.py) lets one of them sweep per interval.

Why a thread, not the worker's own timer: with the prefork pool the main process runs an
event loop (kombu's hub) that feeds the pool and reads the broker, and a timer entry runs
on that loop; a sweep waits on the database and the broker (seconds, when one is down),
and the loop would wait with it. The thread is started by a worker bootstep that
requires the pool, so it starts after the pool's children were forked, and stops
(joined, bounded) when the worker stops. Children forked later (a replaced child)
re-create their database pool in `worker_process_init` (worker/lifecycle.py), so they
share nothing the thread holds.

A sweep that fails (database or broker down) logs one line and the thread tries again
at its next turn; nothing a sweep does is lost by skipping one.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from typing import Any

from celery import Celery, bootsteps
from flask import Flask
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from shared.config import Settings
from shared.database import db
from worker.relay import sweep

log = logging.getLogger(__name__)

# Each wait is the interval times a factor drawn from this range.
JITTER = (0.9, 1.1)
STOP_TIMEOUT = 10.0
# Retention reads every finished row still kept: once a minute per worker is plenty.
RETENTION_EVERY = 60.0


def next_wait(interval: float) -> float:
    return interval * random.uniform(*JITTER)


class RelayLoop:
    """The sweeping thread of one worker process."""

    def __init__(self, app: Flask, holder: str) -> None:
        self.app = app
        self.holder = holder
        self.settings: Settings = app.config["SETTINGS"]
        self._stop = threading.Event()
        self._retained_at: float | None = None  # time.monotonic() of the last retention
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT)

    def _run(self) -> None:
        while not self._stop.wait(next_wait(self.settings.outbox_relay_interval)):
            self.sweep_once()

    def _retention_due(self) -> bool:
        """Pacing of this worker's own work (not a row's time): its monotonic clock."""
        return self._retained_at is None or (
            time.monotonic() - self._retained_at >= RETENTION_EVERY)

    def sweep_once(self) -> None:
        retain = self._retention_due()
        with self.app.app_context():
            try:
                report = sweep(self.holder, retain=retain)
            except (SQLAlchemyError, KombuError, RedisError, OSError) as exc:
                db.session.rollback()
                log.warning("relay sweep failed, next try in about %ss: %s",
                            self.settings.outbox_relay_interval, type(exc).__name__)
                return
            except Exception:  # noqa: BLE001 - the thread must outlive any one sweep
                db.session.rollback()
                log.exception("relay sweep failed")
                return
            finally:
                db.session.remove()
        if report is not None and retain:
            self._retained_at = time.monotonic()
        if report is not None and (report.relayed.published or report.relayed.failed
                                   or report.deleted):
            log.info("relay sweep published=%d failed=%d deleted=%d",
                     report.relayed.published, report.relayed.failed, report.deleted)


def relay_step(app: Flask) -> type[bootsteps.StartStopStep]:
    """A worker bootstep that runs `RelayLoop` in the worker's main process."""

    class OutboxRelay(bootsteps.StartStopStep):  # type: ignore[misc]
        requires = {"celery.worker.components:Pool"}
        label = "Outbox relay"

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self.loop: RelayLoop | None = None

        def start(self, worker: Any) -> None:
            holder = f"{getattr(worker, 'hostname', socket.gethostname())}:{os.getpid()}"
            self.loop = RelayLoop(app, holder[:128])
            self.loop.start()

        def stop(self, worker: Any) -> None:
            if self.loop is not None:
                self.loop.stop()

        def shutdown(self, worker: Any) -> None:
            self.stop(worker)

    return OutboxRelay


def install(app: Flask, celery: Celery) -> None:
    celery.steps["worker"].add(relay_step(app))
