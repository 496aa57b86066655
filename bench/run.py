"""`python -m bench.run`: start the stack on loopback, measure everything, print and save.

Order: the raw limits (Redis, smtplib, bare Celery) while nothing else runs; the worker's
steps in this process; then the real worker and gunicorn: web latency (SMTP instant, then
slow), end to end with an idle worker, web load with the worker paused; then queues of
growing size drained by the worker. `--quick` shrinks every size for a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.anatomy import representative_message, task_anatomy
from bench.data import (
    PARALLEL_FROM,
    Publishers,
    address,
    control_app,
    create_users,
    purge_email_queue,
    stack_environment,
)
from bench.database import bench_database
from bench.drain import Pipeline, run_sizes
from bench.end_to_end import end_to_end
from bench.processes import CeleryWorker, RedisProcess, WebServer
from bench.raw import (
    celery_noop,
    celery_variants,
    redis_lpush,
    smtp_new_connection,
    smtp_reused_connection,
)
from bench.sink import SmtpSink
from bench.stats import ratio
from bench.web import latency_with_and_without_slow_smtp, load_curve
from scripts.embedded_redis import free_port
from shared.celery_factory import celery_settings
from shared.config import Settings
from shared.contract import EMAIL_QUEUE

ROOT = Path(__file__).resolve().parent.parent
# The size of one published reset task in Redis (JSON envelope, base64 body), for LPUSH.
TASK_MESSAGE_BYTES = 1140

FULL = {
    "sizes": "1000,10000,100000", "full_drain_max": 10000, "window": 10.0,
    "latency_requests": 200, "latency_pause": 0.05,
    "load_clients": "1,2,4,8,16", "load_seconds": 3.0,
    "e2e_requests": 100, "raw_seconds": 1.5, "noop_tasks": 2000, "anatomy": 300,
    "user_pool": 2000,
}
QUICK = {
    "sizes": "40,80,160", "full_drain_max": 80, "window": 0.5,
    "latency_requests": 30, "latency_pause": 0.01,
    "load_clients": "1,2", "load_seconds": 0.5,
    "e2e_requests": 8, "raw_seconds": 0.2, "noop_tasks": 300, "anatomy": 20,
    "user_pool": 50,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", default="artifacts/bench.json", help="where to write results")
    parser.add_argument("--sizes", help="queue sizes for sections 3 and 4 (comma-separated)")
    parser.add_argument("--full-drain-max", type=int, help="drain fully up to this size")
    parser.add_argument("--window", type=float, help="seconds of the rate window (section 4)")
    parser.add_argument("--max-drain-seconds", type=float, default=120.0,
                        help="cut a full drain short after this long (reported as incomplete)")
    parser.add_argument("--postgres", metavar="URL",
                        help="run on PostgreSQL: a server URL such as "
                             "postgresql+psycopg://postgres@127.0.0.1:5432/postgres (the run "
                             "creates its own database there and drops it); default SQLite")
    parser.add_argument("--pool", default="prefork", help="celery worker pool")
    parser.add_argument("--concurrency", type=int,
                        help="celery worker concurrency (default: the project's, 2 per core)")
    parser.add_argument("--worker-loglevel", default="INFO", help="celery worker log level")
    parser.add_argument("--worker-overrides", type=json.loads, default={},
                        help='Celery settings for the email worker, as JSON, e.g. '
                             '\'{"worker_prefetch_multiplier": 4}\'')
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--publishers", type=int, default=os.cpu_count() or 1,
                        help=f"processes publishing queues of {PARALLEL_FROM:,} or more")
    parser.add_argument("--latency-requests", type=int, help="POSTs per latency measurement")
    parser.add_argument("--latency-pause", type=float,
                        help="quiet seconds before each latency request")
    parser.add_argument("--smtp-delay", type=float, default=1.0, help="slow SMTP answer, s")
    parser.add_argument("--load-clients", help="concurrent clients per load step")
    parser.add_argument("--load-seconds", type=float, help="seconds per load step")
    parser.add_argument("--p99-budget-ms", type=float, default=50.0, help="load-test p99 budget")
    parser.add_argument("--e2e-requests", type=int, help="end-to-end samples")
    parser.add_argument("--raw-seconds", type=float, help="seconds per raw measurement")
    parser.add_argument("--noop-tasks", type=int, help="no-op tasks per Celery measurement")
    parser.add_argument("--celery-variants", action="store_true",
                        help="also time the no-op with one Celery setting changed at a time")
    parser.add_argument("--anatomy", type=int, help="resets timed step by step in-process")
    parser.add_argument("--user-pool", type=int, help="accounts the queued resets cycle through")
    parser.add_argument("--timing-json", default="artifacts/bench-timing.json",
                        help="timing-parity results to include if present (make bench-timing)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory and logs")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.concurrency is None:
        args.concurrency = celery_settings(Settings())["worker_concurrency"]
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.load_clients = [int(s) for s in str(args.load_clients).split(",")]
    return args


_STARTED = time.monotonic()


def progress(message: str) -> None:
    elapsed = time.monotonic() - _STARTED
    print(f"[bench {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


def machine(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "worker_pool": f"{args.pool} x{args.concurrency}",
        "worker_loglevel": args.worker_loglevel,
        "worker_overrides": args.worker_overrides,
        "database": "postgresql" if args.postgres else "sqlite (WAL)",
        "parameters": {k: v for k, v in vars(args).items() if k not in {"json", "keep"}},
    }


def timing_parity(path: Path) -> dict[str, Any]:
    """Section 5 is measured by `make bench-timing`; its JSON is folded in when present."""
    if not path.exists():
        return {"summary": "not measured here", "source": "make bench-timing"}
    data = json.loads(path.read_text())
    return {"summary": str(data.get("summary", "see source")), "source": str(path), "data": data}


def wait_for_emails(sink: SmtpSink, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sink.count() < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected {count} emails at the sink, have {sink.count()}")
        time.sleep(0.05)


def measure(args: argparse.Namespace, run_dir: Path, stack: contextlib.ExitStack) -> dict[str, Any]:
    results: dict[str, Any] = {"meta": machine(args)}
    progress(f"starting Redis and the SMTP sink in {run_dir}")
    redis = RedisProcess(free_port(), run_dir / "redis").start()
    stack.callback(redis.stop)
    sink = SmtpSink(free_port()).start()
    stack.callback(sink.stop)
    web_port = free_port()
    database_url = stack.enter_context(bench_database(run_dir, args.postgres))
    env = stack_environment(database_url, redis.url, sink.port, web_port)
    app = control_app(env)
    pool = [address("bench", i) for i in range(args.user_pool)]
    e2e_recipients = [address("e2e", i) for i in range(args.e2e_requests)]
    anatomy_recipients = [address("anatomy", i) for i in range(args.anatomy)]
    # Each latency request has its own account, so its email can be told apart.
    latency_recipients = [address("latency", i)
                          for i in range(2 * (args.latency_requests + latency_warmup(args)))]
    create_users(app, pool + e2e_recipients + anatomy_recipients + latency_recipients)

    results["raw"] = raw_limits(args, env, run_dir, redis, sink, pool[0])
    progress("task anatomy, in-process")
    results["anatomy"] = task_anatomy(env, app, anatomy_recipients, run_dir)

    progress("starting the celery worker and gunicorn")
    worker = email_worker(args, env, run_dir)
    stack.callback(worker.stop)
    web = WebServer(web_port, env, run_dir, workers=args.web_workers)
    stack.callback(web.stop)
    worker.launch()
    web.launch()
    worker.wait_ready(app.extensions["celery"])
    web.wait_ready()
    pipeline = Pipeline(app, sink, worker, redis)
    results["web"], results["end_to_end"] = web_and_end_to_end(
        args, pipeline, web, pool, latency_recipients, e2e_recipients)

    if max(args.sizes) >= PARALLEL_FROM:
        pipeline.publishers = Publishers(env, args.publishers)
        stack.callback(pipeline.publishers.close)
    progress(f"worker: queues of {', '.join(f'{s:,}' for s in args.sizes)}")
    queues = run_sizes(pipeline, pool, args.sizes, args.window, args.full_drain_max,
                       args.max_drain_seconds)
    progress("worker: one more full drain with task events on, as while Flower watches")
    control = app.extensions["celery"]
    worker.task_events(control, on=True)
    events_on = run_sizes(pipeline, pool, [min(args.full_drain_max, max(args.sizes))],
                          args.window, args.full_drain_max, args.max_drain_seconds)[0]
    worker.task_events(control, on=False)
    for queue in [*queues, events_on]:
        queue["ratio_to_raw"] = ratios_to_raw(queue["emails_per_s"], results["raw"])
    results["worker"] = {"pool": f"{args.pool} x{args.concurrency}", "queues": queues,
                         "events_on": events_on}
    results["timing_parity"] = timing_parity(ROOT / args.timing_json)
    return results


def email_worker(args: argparse.Namespace, env: dict[str, str], run_dir: Path) -> CeleryWorker:
    """The project's worker, or the same with `--worker-overrides` applied to its settings."""
    if not args.worker_overrides:
        app_path, worker_env = "worker.celery_app:celery_app", env
    else:
        app_path = "bench.worker_variant:celery_app"
        worker_env = {**env, "BENCH_WORKER_OVERRIDES": json.dumps(args.worker_overrides)}
    return CeleryWorker(app_path, EMAIL_QUEUE, worker_env, run_dir / "worker.log",
                        pool=args.pool, concurrency=args.concurrency,
                        loglevel=args.worker_loglevel)


def raw_limits(args: argparse.Namespace, env: dict[str, str], run_dir: Path, redis: RedisProcess,
               sink: SmtpSink, account: str) -> dict[str, Any]:
    progress("raw limits: Redis LPUSH, smtplib")
    message = representative_message(env, account)
    raw: dict[str, Any] = {
        "redis_lpush": redis_lpush(redis.url, TASK_MESSAGE_BYTES, args.raw_seconds),
        "smtp_reused": smtp_reused_connection(sink.port, message, args.raw_seconds),
        "smtp_new_connection": smtp_new_connection(sink.port, message, args.raw_seconds),
    }
    for key, project in (("celery_noop", True), ("celery_noop_defaults", False)):
        progress(f"raw limits: Celery no-op ({'project' if project else 'default'} settings)")
        raw[key] = celery_noop(env, run_dir, redis.pid, args.noop_tasks, args.pool,
                               args.concurrency, project_settings=project)
    if args.celery_variants:
        progress("raw limits: Celery no-op, one project setting changed at a time")
        raw["celery_noop_variants"] = celery_variants(env, run_dir, redis.pid, args.noop_tasks,
                                                      args.pool, args.concurrency)
    return raw


def ratios_to_raw(emails_per_s: float, raw: dict[str, Any]) -> dict[str, float | None]:
    """The worker's rate as a fraction of each raw limit measured in this run."""
    return {
        "smtp_reused": ratio(emails_per_s, raw["smtp_reused"]["emails_per_s"]),
        "smtp_new_connection": ratio(emails_per_s, raw["smtp_new_connection"]["emails_per_s"]),
        "celery_noop": ratio(emails_per_s, raw["celery_noop"]["tasks_per_s"]),
        "celery_noop_defaults": ratio(emails_per_s, raw["celery_noop_defaults"]["tasks_per_s"]),
        "redis_lpush": ratio(emails_per_s, raw["redis_lpush"]["ops_per_s"]),
    }


def latency_warmup(args: argparse.Namespace) -> int:
    return max(5, args.latency_requests // 20)


def web_and_end_to_end(args: argparse.Namespace, pipeline: Pipeline, web: WebServer,
                       pool: list[str], latency_recipients: list[str],
                       e2e_recipients: list[str]) -> tuple[dict, dict]:
    sink, app = pipeline.sink, pipeline.app
    progress("web latency, SMTP instant and slow, in alternating blocks")
    warmup = latency_warmup(args)
    per_phase = args.latency_requests + warmup
    expected = sink.count() + 2 * per_phase
    instant, slow = latency_with_and_without_slow_smtp(
        web.port, latency_recipients[:per_phase], latency_recipients[per_phase:], warmup,
        args.latency_pause, sink.set_delay, args.smtp_delay, wait_for_email=sink.wait_for,
        settle=pipeline.settle)
    wait_for_emails(sink, expected, timeout=60 + expected / 20)

    progress("end to end, idle worker")
    end_to_end_result = end_to_end(web.port, sink, e2e_recipients, pause=0.05)

    progress("web load, worker paused")
    pipeline.pause()
    load = load_curve(web.port, args.load_clients, args.load_seconds, pool, args.p99_budget_ms)
    web.stop()
    purge_email_queue(app)
    web_result = {
        "gunicorn_workers": args.web_workers, "smtp_delay_s": args.smtp_delay,
        "latency_pause_s": args.latency_pause,
        "latency_smtp_instant": instant, "latency_smtp_delay": slow, "load": load,
    }
    return web_result, end_to_end_result


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    """Unwind (and so stop every server this run started) on SIGTERM as on Ctrl-C."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix="microblog-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            results = measure(args, run_dir, stack)
            progress("stopping")
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    results["meta"]["run_seconds"] = round(time.monotonic() - started, 1)
    results["targets"] = report.targets(results)
    print(report.render(report.table_rows(results)))
    out = ROOT / args.json if not Path(args.json).is_absolute() else Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
