"""One log line per delivery, not three.

The delivery machine logs every outcome itself (`event=delivery.sent delivery=…
to=s***@example.com attempt=1`), so Celery's own INFO lines for each task ("Task …
received", "Task … succeeded in …: 'sent'", "Task … retry: …") repeat what that line
says, at a cost of about 0.1 ms per email in the pool. They are shown only with
`--loglevel DEBUG`; Celery still logs a failing task at ERROR.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import after_setup_logger

PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def _quiet_per_task_lines(loglevel: Any = None, **_: Any) -> None:
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    if isinstance(level, int) and level <= logging.DEBUG:
        return
    for name in PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def connect() -> None:
    after_setup_logger.connect(_quiet_per_task_lines, weak=False)
