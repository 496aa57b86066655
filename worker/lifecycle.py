"""Process hooks: connections per prefork child, and a normal stop that loses no send.

Prefork children must not share database or SMTP connections with the parent.

A normal stop often signals the whole process group, not only the main process
(`make run`'s honcho on Ctrl-C, systemd's default KillMode). Celery's children die on
SIGTERM, which would cut an SMTP conversation short: the server may already have the
email while the row still says `sending`, so it would be sent again once the lease
ends. A child therefore finishes the send it is in the middle of (the hard time limit
still ends it with SIGKILL) and leaves the stop to the main process, whose warm
shutdown acknowledges finished tasks and puts reserved ones back on the queue. An idle
child dies at once, as before.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from celery.signals import task_postrun, task_prerun, worker_process_init, worker_process_shutdown
from flask import Flask

from shared.database import db
from worker import smtp


class _SendInProgress:
    """SIGTERM in a pool child: deferred while a task runs, as before otherwise.

    Installed at the child's first task, because billiard sets its own SIGTERM handler
    after `worker_process_init`; that handler (clean exit) is kept for the idle case.
    """

    def __init__(self) -> None:
        self.busy = False
        self.asked_to_stop = False
        self.previous: Any = signal.SIG_DFL

    def on_sigterm(self, signum: int, frame: Any) -> None:
        if self.busy:
            self.asked_to_stop = True
            return
        self.stop_now(signum, frame)

    def stop_now(self, signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, self.previous)
        if callable(self.previous):
            self.previous(signum, frame)
        else:
            os.kill(os.getpid(), signal.SIGTERM)

    def started(self, **_: Any) -> None:
        current = signal.getsignal(signal.SIGTERM)
        if current != self.on_sigterm and not self.asked_to_stop:
            self.previous = current
            signal.signal(signal.SIGTERM, self.on_sigterm)
        self.busy = True

    def finished(self, **_: Any) -> None:
        self.busy = False
        if self.asked_to_stop:
            # From now on a SIGTERM (the pool's own, at shutdown) ends this process.
            signal.signal(signal.SIGTERM, self.previous)


def connect(app: Flask) -> None:
    guard = _SendInProgress()

    def init_child(**_: Any) -> None:
        with app.app_context():
            db.engine.dispose(close=False)
        smtp.forget_connection()

    def remove_session(**kwargs: Any) -> None:
        guard.finished()
        with app.app_context():
            db.session.remove()

    def say_goodbye(**_: Any) -> None:
        smtp.close_connection()

    worker_process_init.connect(init_child, weak=False)
    worker_process_shutdown.connect(say_goodbye, weak=False)
    task_prerun.connect(guard.started, weak=False)
    task_postrun.connect(remove_session, weak=False)
