"""Can response time tell a known email address from an unknown one? Measure it.

Runs the real stack on loopback: gunicorn serving `web.wsgi:app` (as `make web` does), a
real Redis server, a real `celery worker` that actually renders and sends the emails for
the known addresses to an SMTP sink, and a database (SQLite in a temporary directory unless
DATABASE_URL is set; use a scratch database) and the SMTP sink in its own process.

`--compare known` (the default) runs with the rate limits off (RATELIMIT_ENABLED=false), as
for load tests: with them on every address would soon be throttled. `--compare throttled`
turns them on and compares requests over a per-address limit with admitted ones.

It posts the reset form `--samples` times for registered addresses and as many times for
unregistered ones of the same shape, interleaved in random order and spaced out by
`--gap-ms` (jittered), each on a fresh connection, timing the POST from the first byte
sent to the last byte read. It reports the medians, their difference, and how well the best
threshold classifier ("slower than t means known") separates the two:

- in-sample: the best threshold chosen on all samples and scored on the same ones; biased
  upward even for identical distributions, so it is reported next to
- the same statistic for randomly shuffled labels (the null: what pure noise scores), and
- cross-validated: the threshold chosen on one half and scored on the other (both ways,
  repeated over random splits): what an attacker who must commit to a threshold gets.

Usage: `make bench-timing` (both comparisons) or
`python -m bench.timing_parity --compare known --samples 500 --gap-ms 40`.
Results are printed and written to artifacts/bench/timing_parity[_throttled].json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ARTIFACT = ROOT / "artifacts" / "bench" / "timing_parity.json"
CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
KNOWN_ACCOUNTS = 64


# ---------------------------------------------------------------- statistics (pure) ----


def _sweep(known: Sequence[float], unknown: Sequence[float]) -> tuple[float, float, bool]:
    """Best accuracy over all thresholds t and both rules ("slower than t means known" and
    "faster than t means known"), with its threshold and rule (True: slower means known)."""
    labelled = sorted([(t, 1) for t in known] + [(t, 0) for t in unknown])
    total_known, total = len(known), len(labelled)
    known_below = unknown_below = 0
    best = (-1.0, labelled[0][0] - 1.0, True)
    index = 0
    while True:
        threshold = labelled[index - 1][0] if index else labelled[0][0] - 1.0
        # Everything at or below `threshold` is "below": correct = known above + unknown below.
        slower_right = ((total_known - known_below) + unknown_below) / total
        for accuracy, slower in ((slower_right, True), (1 - slower_right, False)):
            if accuracy > best[0]:
                best = (accuracy, threshold, slower)
        if index >= total:
            return best
        value = labelled[index][0]
        while index < total and labelled[index][0] == value:
            known_below += labelled[index][1]
            unknown_below += 1 - labelled[index][1]
            index += 1


def best_threshold_accuracy(known: Sequence[float], unknown: Sequence[float]) -> float:
    """Accuracy of the best rule "time > t means known" or "time <= t means known"."""
    return _sweep(known, unknown)[0]


def _best_threshold(known: Sequence[float], unknown: Sequence[float]) -> tuple[float, bool]:
    """The threshold and rule that fit these samples best."""
    _, threshold, slower = _sweep(known, unknown)
    return threshold, slower


def _score(known: Sequence[float], unknown: Sequence[float], t: float, slower: bool) -> float:
    right = sum(1 for x in known if (x > t) == slower)
    right += sum(1 for x in unknown if (x > t) != slower)
    return right / (len(known) + len(unknown))


def cross_validated_accuracy(known: Sequence[float], unknown: Sequence[float],
                             repeats: int = 20, seed: int = 1) -> float:
    """Threshold fitted on one half, scored on the other; both ways; averaged over splits."""
    rng = random.Random(seed)
    scores = []
    for _ in range(repeats):
        k, u = list(known), list(unknown)
        rng.shuffle(k)
        rng.shuffle(u)
        halves = [(k[: len(k) // 2], u[: len(u) // 2]), (k[len(k) // 2:], u[len(u) // 2:])]
        for train, test in (halves, halves[::-1]):
            t, slower = _best_threshold(*train)
            scores.append(_score(*test, t, slower))
    return statistics.fmean(scores)


def null_best_threshold_accuracy(known: Sequence[float], unknown: Sequence[float],
                                 repeats: int = 200, seed: int = 2) -> tuple[float, float]:
    """Mean and 95th percentile of the in-sample statistic when the labels are shuffled."""
    rng = random.Random(seed)
    pooled = list(known) + list(unknown)
    results = []
    for _ in range(repeats):
        rng.shuffle(pooled)
        results.append(best_threshold_accuracy(pooled[: len(known)], pooled[len(known):]))
    results.sort()
    return statistics.fmean(results), results[int(0.95 * (len(results) - 1))]


def median_difference_interval(first: Sequence[float], second: Sequence[float],
                               repeats: int = 2000, seed: int = 3) -> tuple[float, float]:
    """95% bootstrap interval of median(first) - median(second): is the difference noise?"""
    rng = random.Random(seed)
    differences = sorted(
        statistics.median(rng.choices(first, k=len(first)))
        - statistics.median(rng.choices(second, k=len(second)))
        for _ in range(repeats)
    )
    return differences[int(0.025 * repeats)], differences[int(0.975 * repeats) - 1]


@dataclass
class Report:
    comparison: str  # "<first> vs <second>"; differences are first minus second
    samples_per_class: int
    median_ms: dict[str, float]
    median_difference_ms: float
    median_difference_95ci_ms: tuple[float, float]
    mean_ms: dict[str, float]
    threshold_classifier_accuracy: dict[str, float]
    gap_ms: float = 0.0
    non_redirect_answers: int = 0
    emails_sent: int = 0
    server: str = ""
    database: str = ""
    load_average: dict[str, float] = field(default_factory=dict)


def analyse(first_s: Sequence[float], second_s: Sequence[float],
            labels: tuple[str, str] = ("known", "unknown"), **extra: object) -> Report:
    first = [t * 1000 for t in first_s]
    second = [t * 1000 for t in second_s]
    null_mean, null_p95 = null_best_threshold_accuracy(first, second)
    a, b = labels
    return Report(
        comparison=f"{a} vs {b}",
        samples_per_class=len(first),
        median_ms={a: round(statistics.median(first), 4), b: round(statistics.median(second), 4)},
        median_difference_ms=round(statistics.median(first) - statistics.median(second), 4),
        median_difference_95ci_ms=tuple(  # type: ignore[arg-type]
            round(x, 4) for x in median_difference_interval(first, second)),
        mean_ms={a: round(statistics.fmean(first), 4), b: round(statistics.fmean(second), 4)},
        threshold_classifier_accuracy={
            "in_sample": round(best_threshold_accuracy(first, second), 4),
            "shuffled_labels_mean": round(null_mean, 4),
            "shuffled_labels_p95": round(null_p95, 4),
            "cross_validated": round(cross_validated_accuracy(first, second), 4),
        },
        **extra,  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------- the real stack ----


def _free_port() -> int:
    from scripts.embedded_redis import free_port

    return free_port()


class SmtpSink:
    """scripts/smtp_sink.py in its own process (in this one it would compete with the probe
    for the GIL exactly when a known address's email arrives), logging what it accepts."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.log = workdir / "smtp.log"

    @property
    def count(self) -> int:
        return self.log.read_text(errors="replace").count("\nSubject: ")


class Stack:
    """Redis, the SMTP sink, a migrated and seeded database, a celery worker and gunicorn."""

    def __init__(self, workdir: Path, web_workers: int, with_worker: bool,
                 limits: dict[str, str]) -> None:
        self.workdir = workdir
        self.limits = limits
        self.web_workers = web_workers
        self.with_worker = with_worker
        self.processes: list[subprocess.Popen[bytes]] = []
        self.smtp = SmtpSink(workdir)
        self.web_port = _free_port()
        self.known: list[str] = []

    def environment(self, redis_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": os.environ.get("DATABASE_URL",
                                           f"sqlite:///{self.workdir / 'bench.db'}"),
            "REDIS_URL": redis_url,
            **self.limits,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(self.smtp.port),
            "SERVER_NAME": f"127.0.0.1:{self.web_port}",
            "PREFERRED_URL_SCHEME": "http",
            "TRUSTED_PROXIES": "0",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        from scripts.embedded_redis import redis_command

        self._spawn([sys.executable, "-m", "scripts.smtp_sink", "--port", str(self.smtp.port)],
                    self.smtp.log.name)
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            port = _free_port()
            self._spawn(redis_command(port, self.workdir / "redis"), "redis.log")
            redis_url = f"redis://127.0.0.1:{port}/0"
            _wait_for_redis(redis_url)
        self.env = self.environment(redis_url)
        subprocess.run([str(BIN / "flask"), "--app", "web.wsgi", "db", "upgrade"], cwd=ROOT,
                       env=self.env, check=True, capture_output=True)
        self.known = self._seed_accounts()
        if self.with_worker:
            worker = self._spawn([str(BIN / "celery"), "-A", "worker.celery_app:celery_app",
                                  "worker", "-Q", "email", "-c", "2", "--loglevel", "WARNING",
                                  "--without-gossip", "--without-mingle"], "worker.log")
            time.sleep(0.5)
            if worker.poll() is not None:
                raise RuntimeError("celery worker exited: see " + str(self.workdir))
        self._spawn([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.web_port}",
                     "--workers", str(self.web_workers), "--access-logfile",
                     str(self.workdir / "access.log"), "web.wsgi:app"], "gunicorn.log")
        _wait_for_http(self.web_port)

    def _spawn(self, command: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "wb")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(command, cwd=ROOT, env=getattr(self, "env", None),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def _seed_accounts(self) -> list[str]:
        """Registered addresses, all with one hash (hashing 64 passwords would take a while)."""
        from shared.config import Settings
        from shared.database import db
        from shared.models import User
        from shared.passwords import password_hashing
        from web import create_app

        app = create_app(Settings.from_env(self.env))
        logging.getLogger().setLevel(logging.WARNING)  # create_app set INFO; keep the report clean
        addresses = [f"k{secrets.token_hex(4)}@example.com" for _ in range(KNOWN_ACCOUNTS)]
        with app.app_context():
            password_hash = password_hashing().hash("benchmark passphrase")
            for address in addresses:
                db.session.add(User(username=f"bench-{address[:9]}", email=address,
                                    password_hash=password_hash))
            db.session.commit()
            db.engine.dispose()
        return addresses

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_for_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_for_http(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/login")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Prober:
    """One browser session: its cookie and CSRF token, reused for every POST (never updated,
    so every request carries the same bytes apart from the address)."""

    def __init__(self, port: int) -> None:
        self.port = port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/reset_password_request")
        response = connection.getresponse()
        page = response.read()
        self.cookie = response.getheader("Set-Cookie", "").split(";")[0]
        connection.close()
        match = CSRF.search(page)
        if not match:
            raise RuntimeError("no CSRF token on the reset form")
        self.csrf_token = match.group(1).decode()

    def post(self, email: str) -> tuple[float, int, str]:
        body = urlencode({"csrf_token": self.csrf_token, "email": email,
                          "submit": "Reset Password"}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": self.cookie,
                   "Content-Length": str(len(body))}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.connect()
        started = time.perf_counter()
        connection.request("POST", "/reset_password_request", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        connection.close()
        return elapsed, response.status, response.getheader("Location", "")


# What each comparison posts, and the rate limits it runs under. "throttled vs admitted"
# compares two kinds of unknown address: fresh ones (admitted) and ones already asked for
# (over a per-address limit of 1), with the per-IP limit out of the way.
COMPARISONS: dict[str, tuple[tuple[str, str], dict[str, str]]] = {
    "known": (("known", "unknown"), {"RATELIMIT_ENABLED": "false"}),
    "throttled": (("throttled", "admitted"), {
        "RATELIMIT_ENABLED": "true",
        "RATELIMIT_RESET_REQUEST_PER_IP": "1000000 per minute",
        "RATELIMIT_RESET_REQUEST_CEILING_PER_IP": "1000000 per minute",
        "RATELIMIT_RESET_REQUEST_PER_EMAIL": "1 per day",
    }),
}


def fresh_address() -> str:
    return f"k{secrets.token_hex(4)}@example.com"  # the shape of the registered ones


def measure(stack: Stack, comparison: str, samples: int, gap_ms: float, warmup: int,
            seed: int | None) -> tuple[list[float], list[float], int]:
    rng = random.Random(seed)
    prober = Prober(stack.web_port)
    (first, _), _ = COMPARISONS[comparison]
    plan = [True] * samples + [False] * samples  # True: the first class
    rng.shuffle(plan)
    asked = [fresh_address() for _ in range(8)]  # throttled after the warm-up
    first_times: list[float] = []
    second_times: list[float] = []
    anomalies = 0
    for n in range(warmup):
        prober.post(asked[n % len(asked)] if n % 2 else stack.known[n % len(stack.known)])
        time.sleep(gap_ms / 1000)
    for n, is_first in enumerate(plan):
        if comparison == "known":
            address = stack.known[n % len(stack.known)] if is_first else fresh_address()
        else:
            address = asked[n % len(asked)] if is_first else fresh_address()
        elapsed, status, location = prober.post(address)
        if status != 302 or not location.endswith("/reset_password_request/sent"):
            anomalies += 1
        (first_times if is_first else second_times).append(elapsed)
        time.sleep(rng.uniform(0.5, 1.5) * gap_ms / 1000)
    return first_times, second_times, anomalies


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="known",
                        help="known vs unknown addresses (default), or throttled vs admitted")
    parser.add_argument("--samples", type=int, default=500, help="requests per class")
    parser.add_argument("--gap-ms", type=float, default=40.0, help="mean pause between requests")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--no-worker", action="store_true",
                        help="do not run a celery worker (known addresses then cost nothing)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--output", type=Path, default=ARTIFACT)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="timing-parity-"))
    labels, limits = COMPARISONS[args.compare]
    stack = Stack(workdir, args.web_workers, with_worker=not args.no_worker, limits=limits)
    try:
        stack.start()
        print(f"measuring {args.samples} {labels[0]} + {args.samples} {labels[1]}, interleaved,"
              f" ~{args.gap_ms:g} ms apart, against gunicorn on 127.0.0.1:{stack.web_port}",
              flush=True)
        load_before = os.getloadavg()[0]
        first, second, anomalies = measure(stack, args.compare, args.samples, args.gap_ms,
                                           args.warmup, args.seed)
        load_after = os.getloadavg()[0]
        time.sleep(3)  # let the worker finish the last emails before counting them
        report = analyse(first, second, labels, gap_ms=args.gap_ms,
                         non_redirect_answers=anomalies, emails_sent=stack.smtp.count,
                         server=f"gunicorn --workers {args.web_workers}",
                         database=stack.env["DATABASE_URL"].split(":", 1)[0],
                         load_average={"before": load_before, "after": load_after})
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = asdict(report)
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value}")
    summary["samples_ms"] = {labels[0]: [round(t * 1000, 4) for t in first],
                             labels[1]: [round(t * 1000, 4) for t in second]}
    if args.output == ARTIFACT and args.compare != "known":
        args.output = ARTIFACT.with_name(f"timing_parity_{args.compare}.json")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0 if anomalies == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
