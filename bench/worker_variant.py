"""The email worker with some Celery settings changed, to measure what each costs.

`celery -A bench.worker_variant:celery_app worker ...` is the project's worker
(`worker.celery_app`) with `BENCH_WORKER_OVERRIDES` (a JSON object of Celery settings)
applied before it starts, e.g.
`python -m bench.run --worker-overrides '{"worker_prefetch_multiplier": 4}'`.
Nothing in the worker's code changes.
"""

from __future__ import annotations

import json
import os

from worker.celery_app import celery_app

celery_app.conf.update(json.loads(os.environ.get("BENCH_WORKER_OVERRIDES", "{}")))

__all__ = ["celery_app"]
