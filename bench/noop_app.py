"""A Celery app whose one task does nothing: the bare task rate of Celery on this machine.

`celery -A bench.noop_app:celery_app worker -Q bench`. With `BENCH_NOOP_SETTINGS=project`
(the default) it uses the project's Celery settings (acks late, prefetch 1, task events),
so the email worker's rate can be compared with it like for like; with `defaults` it uses
Celery's own defaults, which shows what those durability settings cost.
"""

from __future__ import annotations

import json
import os
from typing import Any

from celery import Celery

from shared.celery_factory import make_celery
from shared.config import Settings

NOOP_TASK = "bench.noop"
NOOP_QUEUE = "bench"


def noop(**_: Any) -> None:
    return None


def make_noop_app(settings: Settings, project_settings: bool = True,
                  overrides: dict[str, Any] | None = None) -> Celery:
    if project_settings:
        app = make_celery(settings, "bench")
    else:
        app = Celery("bench", set_as_current=False)
        app.conf.update(broker_url=settings.redis_url, task_ignore_result=True,
                        worker_hijack_root_logger=False)
    app.conf.update(overrides or {})
    app.task(name=NOOP_TASK, queue=NOOP_QUEUE)(noop)
    return app


celery_app = make_noop_app(
    Settings.from_env(),
    project_settings=os.environ.get("BENCH_NOOP_SETTINGS", "project") == "project",
    # One project setting changed at a time, to see what each costs (`--celery-variants`).
    overrides=json.loads(os.environ.get("BENCH_NOOP_OVERRIDES", "{}")),
)
