"""The machine's own limits, measured in the same run: Redis, smtplib, a bare Celery task."""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench import procfs
from bench.noop_app import NOOP_QUEUE, NOOP_TASK, make_noop_app
from bench.processes import CeleryWorker
from bench.stats import latency_summary, rate
from shared.config import Settings

SENDER = "no-reply@example.org"
RAW_RECIPIENT = "raw-smtp@example.com"


def _timed_loop(operation: Callable[[], object], seconds: float) -> list[float]:
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        operation()
        samples.append(time.perf_counter() - started)
    return samples


def redis_lpush(redis_url: str, payload_bytes: int, seconds: float) -> dict[str, float]:
    """LPUSH of a message the size of a published task, one Python client, one at a time."""
    client = redis.Redis.from_url(redis_url)
    key, payload = "bench:lpush", b"x" * payload_bytes
    client.delete(key)
    samples = _timed_loop(lambda: client.lpush(key, payload), seconds)
    client.delete(key)
    client.close()
    summary = latency_summary(samples)
    return {"ops_per_s": rate(len(samples), sum(samples)), "ops": len(samples),
            "median_us": round(summary["median_ms"] * 1000, 1), "payload_bytes": payload_bytes}


def smtp_reused_connection(port: int, message: bytes, seconds: float) -> dict[str, float]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        samples = _timed_loop(lambda: smtp.sendmail(SENDER, [RAW_RECIPIENT], message), seconds)
    return {"emails_per_s": rate(len(samples), sum(samples)), "emails": len(samples),
            "message_bytes": len(message)}


def smtp_new_connection(port: int, message: bytes, seconds: float) -> dict[str, float]:
    def send_one() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail(SENDER, [RAW_RECIPIENT], message)

    samples = _timed_loop(send_one, seconds)
    return {"emails_per_s": rate(len(samples), sum(samples)), "emails": len(samples),
            "message_bytes": len(message)}


def celery_noop(env: dict[str, str], log_dir: Path, redis_pid: int, count: int, pool: str,
                concurrency: int, project_settings: bool, overrides: dict[str, Any] | None = None,
                loglevel: str | None = None, label: str | None = None) -> dict[str, Any]:
    """Queue `count` no-op tasks for a paused worker, resume it, time the queue until empty.

    The clock starts when the queue first shrinks, so neither start-up nor the remote-control
    round trip counts. Like for like with the email worker is its settings and INFO log;
    Celery bare is Celery's defaults and a WARNING log.
    """
    settings = Settings.from_env(env)
    publisher = make_noop_app(settings, project_settings, overrides)
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(NOOP_QUEUE)
    settings_name = "project" if project_settings else "defaults"
    loglevel = loglevel or ("INFO" if project_settings else "WARNING")
    label = label or settings_name
    worker_env = {**env, "BENCH_NOOP_SETTINGS": settings_name,
                  "BENCH_NOOP_OVERRIDES": json.dumps(overrides or {})}
    worker = CeleryWorker("bench.noop_app:celery_app", NOOP_QUEUE, worker_env,
                          log_dir / f"noop-{label}.log", pool=pool, concurrency=concurrency,
                          loglevel=loglevel)
    worker.start(publisher)
    try:
        worker.pause(publisher)
        for _ in range(count):
            publisher.send_task(NOOP_TASK, queue=NOOP_QUEUE)
        queued = int(client.llen(NOOP_QUEUE))
        cpu_before = worker.cpu_seconds(), procfs.cpu_seconds(redis_pid)
        worker.resume(publisher)
        first_seen, emptied = _watch_queue(client, queued, timeout=60 + count / 50)
        cpu_after = worker.cpu_seconds(), procfs.cpu_seconds(redis_pid)
    finally:
        worker.stop()
        client.delete(NOOP_QUEUE)
        client.close()
    taken = first_seen[1]
    return {
        "tasks_per_s": rate(taken, emptied - first_seen[0]),
        # CPU time is what a busy machine distorts least: compare settings by it.
        "worker_cpu_ms_per_task": round((cpu_after[0] - cpu_before[0]) / queued * 1000, 3),
        "redis_cpu_ms_per_task": round((cpu_after[1] - cpu_before[1]) / queued * 1000, 3),
        "tasks": queued, "settings": settings_name, "overrides": overrides or {},
        "loglevel": loglevel, "pool": f"{pool} x{concurrency}",
    }


def _watch_queue(client: redis.Redis, queued: int,
                 timeout: float) -> tuple[tuple[float, int], float]:
    """Poll the queue length: when it first shrank (time, length), and when it was empty."""
    first_seen: tuple[float, int] | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        length = int(client.llen(NOOP_QUEUE))
        now = time.perf_counter()
        if first_seen is None and length < queued:
            first_seen = (now, length)
        if length == 0 and first_seen is not None:
            return first_seen, now
        time.sleep(0.002)
    raise RuntimeError("no-op tasks were not drained in time")


# Each changes one project setting (or the log level) from the like-for-like no-op.
CELERY_VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "events_off": ({"worker_send_task_events": False, "task_send_sent_event": False,
                    "task_track_started": False}, "INFO"),
    "log_warning": ({}, "WARNING"),
    "prefetch_4": ({"worker_prefetch_multiplier": 4}, "INFO"),
    "acks_early": ({"task_acks_late": False, "task_reject_on_worker_lost": False}, "INFO"),
}


def celery_variants(env: dict[str, str], log_dir: Path, redis_pid: int, count: int, pool: str,
                    concurrency: int) -> dict[str, dict[str, Any]]:
    return {
        name: celery_noop(env, log_dir, redis_pid, count, pool, concurrency,
                          project_settings=True,
                          overrides=overrides, loglevel=loglevel, label=name)
        for name, (overrides, loglevel) in CELERY_VARIANTS.items()
    }
