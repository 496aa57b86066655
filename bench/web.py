"""Section 1: how fast the web tier answers a reset request, alone and under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from bench.stats import latency_summary, rate
from bench.web_client import EXPECTED_STATUS, BrowserSession


def sequential_samples(port: int, recipients: Sequence[str], warmup: int, pause: float,
                       wait_for_email: Callable[[str], object] | None = None
                       ) -> tuple[list[float], int]:
    """One visitor at a time: the answer time of each request on its own, and the errors.

    With a fast SMTP server the worker sends each email right after its request; waiting
    for it (`wait_for_email`) before the next request keeps that work from overlapping the
    next answer. With a slow server the worker just waits on SMTP. Either way the web is
    measured on an otherwise quiet machine, so the two differ only by what SMTP does to
    the web; throughput under load is `load_curve`'s job.
    """
    session = BrowserSession(port).open()
    samples, errors = [], 0
    try:
        for email in recipients[:warmup]:
            session.post_reset(email)
            if wait_for_email is not None:
                wait_for_email(email)
        for email in recipients[warmup:]:
            time.sleep(pause)
            status, seconds = session.post_reset(email)
            samples.append(seconds)
            errors += status != EXPECTED_STATUS
            if wait_for_email is not None:
                wait_for_email(email)
    finally:
        session.close()
    return samples, errors


def latency_with_and_without_slow_smtp(
        port: int, instant: Sequence[str], slow: Sequence[str], warmup: int, pause: float,
        set_smtp_delay: Callable[[float], object], delay: float,
        wait_for_email: Callable[[str], object], settle: Callable[[], object],
        blocks: int = 4) -> tuple[dict[str, float], dict[str, float]]:
    """Answer times with an instant and with a slow SMTP server, in alternating blocks.

    Two phases run one after the other would compare two moments of the machine as much as
    two SMTP servers; alternating blocks spreads any drift over both. Before each instant
    block the worker finishes the slow sends still queued (`settle`), so its catching up
    does not load the machine while the web is measured.
    """
    pooled: dict[float, tuple[list[float], list[int]]] = {0.0: ([], []), delay: ([], [])}
    per_block = [max(1, len(instant) // blocks), max(1, len(slow) // blocks)]
    for block in range(blocks):
        for smtp_delay, recipients, size in ((0.0, instant, per_block[0]),
                                              (delay, slow, per_block[1])):
            set_smtp_delay(smtp_delay)
            if smtp_delay == 0.0:
                settle()
            chunk = recipients[block * size:(block + 1) * size] if block < blocks - 1 \
                else recipients[block * size:]
            samples, errors = sequential_samples(
                port, chunk, warmup if block == 0 else 0, pause,
                wait_for_email if smtp_delay == 0.0 else None)
            pooled[smtp_delay][0].extend(samples)
            pooled[smtp_delay][1].append(errors)
    set_smtp_delay(0.0)
    fast, slow_result = ({**latency_summary(samples), "errors": sum(errors), "blocks": blocks}
                         for samples, errors in (pooled[0.0], pooled[delay]))
    return fast, slow_result


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
