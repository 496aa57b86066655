"""Sections 3 and 4: the worker draining a full queue, and its rate and memory as the queue grows.

For each size the worker is paused (Celery remote control: cancel_consumer), the resets are
queued the way the web queues them, then the worker is resumed and the SMTP sink's arrival
times give the rate. Up to `full_drain_max` the queue is drained to the end; above it, the
rate is taken over a fixed window and the rest is purged. The worker is the same long-lived
process tree throughout, so memory that grows with work done shows up too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from flask import Flask

from bench import procfs
from bench.data import Publishers, enqueue_resets, purge_email_queue
from bench.processes import CeleryWorker, RedisProcess
from bench.sink import SmtpSink
from bench.stats import rate

RSS_EVERY_SECONDS = 0.5
# The processes an email costs CPU in (the worker entry already includes its parts).
PIPELINE_PROCESSES = ("worker", "smtp_sink", "redis")


@dataclass
class Pipeline:
    app: Flask  # web-tier app in this process: writes rows, publishes, sends remote control
    sink: SmtpSink
    worker: CeleryWorker
    redis: RedisProcess
    publishers: Publishers | None = None

    def cpu_seconds(self) -> dict[str, float]:
        own = os.times()
        worker_main = procfs.cpu_seconds(self.worker.pid)
        return {
            "worker": self.worker.cpu_seconds(),
            # The pool's parent reads the broker, hands tasks to the children and acks:
            # one core at most, so it caps the pool if it gets near 1.
            "worker_main": worker_main,
            "worker_children": self.worker.cpu_seconds() - worker_main,
            "smtp_sink": procfs.cpu_seconds(self.sink.pid),
            "redis": procfs.cpu_seconds(self.redis.pid),
            "bench_client": own.user + own.system,
        }

    def pause(self) -> None:
        self.worker.pause(self.app.extensions["celery"])

    def resume(self) -> None:
        self.worker.resume(self.app.extensions["celery"])

    def settle(self, quiet_seconds: float = 1.0, timeout: float = 30) -> None:
        """Wait until no email has arrived for `quiet_seconds` (in-flight tasks are done)."""
        deadline = time.monotonic() + timeout
        last, quiet_since = self.sink.count(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now_count = self.sink.count()
            if now_count != last:
                last, quiet_since = now_count, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                return


def _cpu_breakdown(before: dict[str, float], after: dict[str, float], seconds: float,
                   emails: int) -> dict[str, dict[str, float]]:
    breakdown = {}
    for name in before:
        used = after[name] - before[name]
        breakdown[name] = {
            "cores": round(used / seconds, 2) if seconds else 0.0,
            "ms_per_email": round(used / emails * 1000, 3) if emails else 0.0,
        }
    return breakdown


def run_queue(pipeline: Pipeline, recipients: Sequence[str], window: float, full: bool,
              max_drain_seconds: float = 120.0) -> dict:
    """Queue `recipients`' resets for the paused worker, resume it, measure, pause it again.

    A full drain still running after `max_drain_seconds` is cut short (and reported as not
    complete) so a slow worker cannot stretch the run past a few minutes.
    """
    size = len(recipients)
    before = pipeline.sink.count()
    enqueued = enqueue_resets(pipeline.app, recipients, pipeline.publishers)
    start_index = pipeline.sink.count()
    cpu_before = pipeline.cpu_seconds()
    resumed_at = time.time()
    pipeline.resume()
    rss_samples: list[tuple[float, dict[str, float]]] = []
    first_seen: float | None = None
    deadline = resumed_at + (max_drain_seconds if full else window + 60)
    next_rss = 0.0
    while time.time() < deadline:
        time.sleep(0.02)
        now = time.time()
        count = pipeline.sink.count()
        if now >= next_rss:
            rss_samples.append((now, pipeline.worker.rss()))
            next_rss = now + RSS_EVERY_SECONDS
        if first_seen is None and count > start_index:
            first_seen = now
        if full and count >= before + size:
            break
        if not full and first_seen is not None and now >= first_seen + window:
            break
    ended_at = time.time()
    cpu_after = pipeline.cpu_seconds()
    rss_samples.append((ended_at, pipeline.worker.rss()))
    pipeline.pause()
    complete = pipeline.sink.count() >= before + size
    if not complete:
        purge_email_queue(pipeline.app)
        pipeline.settle()
    times = sorted(t for _, t in pipeline.sink.arrivals_since(start_index) if t <= ended_at)
    if len(times) < 2:
        raise RuntimeError(f"the worker sent {len(times)} of {size} queued emails")
    first, last = times[0], times[-1]
    window_end = first + window
    # A full drain can end inside the window: then its rate is over the drain itself.
    drained_early = full and last < window_end
    window_rate = (rate(len(times) - 1, last - first) if drained_early
                   else rate(sum(1 for t in times if t <= window_end) - 1, window))
    rss_at_window = [r for t, r in rss_samples if t <= window_end][-1:] or [rss_samples[-1][1]]
    cpu = _cpu_breakdown(cpu_before, cpu_after, ended_at - resumed_at, len(times))
    result = {
        "queued": size,
        "enqueue": enqueued.as_dict(),
        "sent": len(times),
        "complete": complete,
        "first_email_after_s": round(first - resumed_at, 3),
        "emails_per_s": rate(len(times) - 1, last - first),
        "window_s": window,
        "window_emails_per_s": window_rate,
        "drained_within_window": drained_early,
        "rss_at_window_end": rss_at_window[0],
        "rss_max_total_mib": max(r["total_mib"] for _, r in rss_samples),
        "cpu": cpu,
        # If every core went to the pipeline (worker, sink, Redis; not this measuring
        # process): robust to other load on the machine, unlike the rate itself.
        "cpu_bound_ceiling_emails_per_s": rate(
            len(os.sched_getaffinity(0)) * 1000,
            sum(part["ms_per_email"] for name, part in cpu.items()
                if name in PIPELINE_PROCESSES)),
    }
    if full:
        result["drain_s"] = round(last - resumed_at, 2)
        result["cut_short_after_s"] = None if complete else max_drain_seconds
    return result


def run_sizes(pipeline: Pipeline, pool: Sequence[str], sizes: Sequence[int], window: float,
              full_drain_max: int, max_drain_seconds: float) -> list[dict]:
    results = []
    for size in sizes:
        recipients = [pool[i % len(pool)] for i in range(size)]
        results.append(run_queue(pipeline, recipients, window, full=size <= full_drain_max,
                                 max_drain_seconds=max_drain_seconds))
    return results
