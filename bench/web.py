"""Section 1: how fast the web tier answers a reset request, alone and under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from bench.stats import latency_summary, rate
from bench.web_client import EXPECTED_STATUS, BrowserSession


def sequential_latency(port: int, recipients: Sequence[str], warmup: int,
                       pause: float) -> dict[str, float]:
    """One visitor at a time, `pause` apart: the answer time of a request on its own.

    The pause lets the worker finish the previous email first, so the machine is equally
    quiet whatever the SMTP server does; throughput under load is `load_curve`'s job.
    """
    session = BrowserSession(port).open()
    try:
        for email in recipients[:warmup]:
            session.post_reset(email)
        samples, errors = [], 0
        for email in recipients[warmup:]:
            time.sleep(pause)
            status, seconds = session.post_reset(email)
            samples.append(seconds)
            errors += status != EXPECTED_STATUS
    finally:
        session.close()
    return {**latency_summary(samples), "errors": errors}


def load_step(port: int, clients: int, seconds: float, recipients: Sequence[str]) -> dict:
    """`clients` sessions posting back to back for `seconds`; requests/s and latency."""
    sessions = [BrowserSession(port).open() for _ in range(clients)]
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    finished = [0.0] * clients
    start_line = threading.Barrier(clients + 1)
    deadline = [0.0]

    def run(index: int) -> None:
        session, mine = sessions[index], samples[index]
        start_line.wait()
        sent = index
        while time.perf_counter() < deadline[0]:
            status, elapsed = session.post_reset(recipients[sent % len(recipients)])
            mine.append(elapsed)
            errors[index] += status != EXPECTED_STATUS
            sent += clients
        finished[index] = time.perf_counter()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    start_line.wait()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    for session in sessions:
        session.close()
    every = [s for per_client in samples for s in per_client]
    elapsed = max(finished) - started
    return {"clients": clients, "requests_per_s": rate(len(every), elapsed),
            **latency_summary(every), "errors": sum(errors)}


def load_curve(port: int, steps: Sequence[int], seconds: float, recipients: Sequence[str],
               p99_budget_ms: float) -> dict:
    """Step up the number of clients; report the best rate whose p99 stays within the budget."""
    results = [load_step(port, clients, seconds, recipients) for clients in steps]
    within = [r for r in results if r["p99_ms"] <= p99_budget_ms and not r["errors"]]
    best = max(within, key=lambda r: r["requests_per_s"]) if within else None
    return {
        "p99_budget_ms": p99_budget_ms,
        "requests_per_s_at_budget": best["requests_per_s"] if best else 0.0,
        "clients_at_budget": best["clients"] if best else None,
        "peak_requests_per_s": max(r["requests_per_s"] for r in results),
        "steps": results,
    }
