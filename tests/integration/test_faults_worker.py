"""Faults in the worker: killed outright in a burst, or stopped normally in a burst."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from support.faults import ResetRequests, attempts, make_users, rows, statuses, wait_until
from support.mailbox import SmtpServer
from support.processes import WorkerProcess

from shared.config import Settings

pytestmark = pytest.mark.integration

BURST = 100


def test_worker_killed_mid_burst_loses_nothing(fault_web: Flask, fault_env, smtp_server: SmtpServer,
                                               processes, fault_figures):
    """SIGKILL to the whole worker process group while it sends to a slow SMTP server."""
    smtp_server.mailbox.reply_delay = 0.15  # commits the email, then answers slowly
    emails = make_users(fault_web, BURST)
    worker = processes(WorkerProcess(fault_env))

    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    wait_until(lambda: len(smtp_server.mailbox.received) >= BURST // 3, 30, "a third sent")
    worker.kill()
    killed_at = time.time()
    delivered_before = len(smtp_server.mailbox.recipients())
    # Nothing else changes a claimed row: these are exactly the ones the dead worker held.
    in_flight = {row.id for row in rows(fault_web) if row.status == "sending"}

    processes(WorkerProcess(fault_env))
    restarted_at = time.time()
    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": BURST}, 20, "every row recorded sent")

    duplicates = smtp_server.mailbox.duplicates()
    timing = Settings.from_env(fault_env)
    unfinished = [a for a in attempts(fault_web) if a.outcome is None]
    fault_figures(
        fault="1. worker SIGKILL mid-burst, slow SMTP", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()), duplicates=duplicates,
        recovery_seconds=last - killed_at,
        notes=[f"{delivered_before} delivered before the kill, {len(in_flight)} rows "
               f"'sending' at the kill, {len(unfinished)} attempts never finished",
               f"worker back {restarted_at - killed_at:.1f}s after the kill; last email "
               f"{last - killed_at:.1f}s after it (lease {timing.delivery_lease_seconds}s, "
               f"relay every {timing.outbox_relay_interval}s, "
               f"visibility {timing.broker_visibility_timeout}s)"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    # A duplicate is only possible for a row the dead worker had claimed: the SMTP server
    # may have committed it before the worker could record it.
    assert duplicates <= len(in_flight)
    assert {a.delivery_id for a in unfinished} <= in_flight


def test_worker_stopped_mid_burst_hands_its_work_back(fault_web: Flask, fault_env,
                                                     smtp_server: SmtpServer, processes,
                                                     fault_figures):
    """SIGTERM (a normal stop) mid-burst: running sends finish, the rest go back, no duplicate."""
    smtp_server.mailbox.reply_delay = 0.15
    emails = make_users(fault_web, BURST)
    worker = processes(WorkerProcess(fault_env))

    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    wait_until(lambda: len(smtp_server.mailbox.received) >= BURST // 3, 30, "a third sent")
    stop_started = time.time()
    worker.stop(timeout=15)
    stopped_at = time.time()
    delivered_before = len(smtp_server.mailbox.recipients())
    left_over = statuses(fault_web)

    processes(WorkerProcess(fault_env))
    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": BURST}, 20, "every row recorded sent")

    unfinished = [a for a in attempts(fault_web) if a.outcome is None]
    fault_figures(
        fault="1b. worker SIGTERM mid-burst (warm stop)", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - stopped_at,
        notes=[f"stop took {stopped_at - stop_started:.1f}s; {delivered_before} delivered "
               f"before it, rows left {left_over}; {len(unfinished)} attempts cut short"],
    )
    assert worker.exited_by_itself, worker.log[-3000:]
    assert left_over.get("sending", 0) == 0, worker.log[-6000:]  # running sends finished
    assert unfinished == []
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
