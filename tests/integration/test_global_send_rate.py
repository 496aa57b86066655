"""EMAIL_SEND_RATE across a real worker: a burst goes out at the rate, each email once."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from support.faults import ResetRequests, attempts, make_users, rows, statuses, wait_until
from support.mailbox import SmtpServer
from support.processes import WorkerProcess

pytestmark = pytest.mark.integration

RATE = 5
BURST = 30


@pytest.fixture
def fault_env(fault_env: dict[str, str]) -> dict[str, str]:
    return {**fault_env, "EMAIL_SEND_RATE": str(RATE)}


def busiest_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1) for start in times)


def test_a_burst_is_sent_at_the_global_rate_each_email_once_none_failed(
        fault_web: Flask, fault_env: dict[str, str], smtp_server: SmtpServer, processes,
        fault_figures):
    emails = make_users(fault_web, BURST)
    # More processes than the rate lets send at once: some must put their row back, and the
    # worker's own relay brings those back.
    processes(WorkerProcess(fault_env, concurrency=8))

    started = time.time()
    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=90)
    wait_until(lambda: statuses(fault_web) == {"sent": BURST}, 30, "every row recorded sent")

    took = last - started
    arrivals = sorted(received.received_at for received in smtp_server.mailbox.received)
    put_back = sum(1 for row in rows(fault_web) if row.relays > 0)
    fault_figures(
        fault=f"send rate {RATE}/s, {BURST} resets, 8 processes", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=took,
        notes=[f"first request to last email {took:.1f}s (>= {(BURST - RATE) / RATE:.0f}s "
               f"by the rate), first to last email {arrivals[-1] - arrivals[0]:.1f}s; "
               f"busiest second {busiest_second(arrivals)} emails; {put_back} rows relayed"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
    # One second's burst, then RATE a second: 25 more tokens take 5 s.
    assert took >= (BURST - RATE) / RATE * 0.95
    # 5 + 5 scheduled in any second at most; the margin is for uneven SMTP round trips.
    assert busiest_second(arrivals) <= 3 * RATE
    # Waiting for a token spends no attempt and fails nothing.
    assert sorted(a.outcome for a in attempts(fault_web)) == ["sent"] * BURST
