"""Faults in the SMTP server: down, busy (4xx), refusing one recipient (5xx), silent."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime

import pytest
from flask import Flask
from support.faults import ResetRequests, attempts, make_users, rows, statuses, wait_until
from support.mailbox import SmtpServer
from support.silent_smtp import SilentServer

from shared.config import Settings
from shared.models import DeliveryAttempt

pytestmark = pytest.mark.integration

COUNT = 20


def by_delivery(found: list[DeliveryAttempt]) -> dict[str, list[DeliveryAttempt]]:
    grouped: dict[str, list[DeliveryAttempt]] = defaultdict(list)
    for attempt in found:
        grouped[attempt.delivery_id].append(attempt)
    return grouped


def scheduled_delays(history: list[DeliveryAttempt]) -> list[float]:
    """The backoff chosen after each failed attempt, in seconds."""
    return [(a.retry_at - a.finished_at).total_seconds()
            for a in history if a.retry_at is not None and a.finished_at is not None]


def seconds(moment: datetime) -> float:
    return moment.timestamp()


def test_smtp_down_longer_than_the_first_retries(fault_web: Flask, fault_env,
                                                 smtp_server: SmtpServer, fault_worker,
                                                 fault_figures):
    emails = make_users(fault_web, COUNT)
    smtp_server.stop()
    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    time.sleep(6)  # backoff 0.5, 1, 2, 4 s (+ jitter): about four attempts each
    smtp_server.start()
    back_at = time.time()

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": COUNT}, 20, "every row recorded sent")
    histories = by_delivery(attempts(fault_web))
    timing = Settings.from_env(fault_env)
    tries = sorted(len(history) for history in histories.values())
    example = max(histories.values(), key=len)
    delays = scheduled_delays(example)
    gaps = [seconds(b.started_at) - seconds(a.started_at)
            for a, b in zip(example, example[1:], strict=False)]
    fault_figures(
        fault="4. SMTP down 6 s, then back", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - back_at,
        notes=[f"attempts per email: min {tries[0]}, max {tries[-1]}",
               "one email's backoff: " + ", ".join(f"{d:.1f}" for d in delays)
               + " s; gaps between attempts: " + ", ".join(f"{g:.1f}" for g in gaps) + " s"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
    for history in histories.values():
        failed = [a for a in history if a.outcome == "retrying"]
        assert len(failed) >= 2 and history[-1].outcome == "sent"
        assert all("connection error" in (a.error or "") for a in failed)
        delays = scheduled_delays(history)
        # Exponential with jitter in the upper half of each step: while the step still
        # doubles (below the cap), a backoff is never shorter than the one before.
        base, cap = timing.retry_backoff_base, timing.retry_backoff_max
        steps = [min(cap, base * 2 ** n) for n in range(len(delays))]
        for n in range(1, len(delays)):
            assert delays[n] <= steps[n]
            if steps[n] > steps[n - 1]:
                assert delays[n] >= delays[n - 1]
        # Never early: an attempt starts no sooner than its backoff allowed.
        for previous, current in zip(history, history[1:], strict=False):
            assert current.started_at >= previous.retry_at


def test_smtp_busy_then_accepting(fault_web: Flask, fault_env, smtp_server: SmtpServer,
                                  fault_worker, fault_figures):
    """421 then 451 replies to DATA for a while: retried, then delivered once each."""
    emails = make_users(fault_web, COUNT)
    smtp_server.mailbox.reply = "421 4.7.0 Try again later, closing connection"
    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    time.sleep(1.5)
    smtp_server.mailbox.reply = "451 4.3.0 Mail server temporarily rejected message"
    time.sleep(1.5)
    smtp_server.mailbox.reply = "250 OK"
    back_at = time.time()

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": COUNT}, 20, "every row recorded sent")
    errors = [a.error or "" for a in attempts(fault_web) if a.outcome == "retrying"]
    fault_figures(
        fault="5a. SMTP 421/451 for 3 s, then 250", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - back_at,
        notes=[f"{len(smtp_server.mailbox.refused)} refusals answered; retried attempts: "
               f"{sum('421' in e for e in errors)} after 421, {sum('451' in e for e in errors)} "
               "after 451"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
    assert any("421" in e for e in errors) and any("451" in e for e in errors)


def test_smtp_refusing_one_recipient_dead_letters_it_alone(fault_web: Flask, fault_env,
                                                          smtp_server: SmtpServer,
                                                          fault_worker, fault_figures):
    """550 for one address: dead-lettered at the first attempt; the others are delivered."""
    emails = make_users(fault_web, COUNT)
    refused = emails[7]
    smtp_server.mailbox.rcpt_replies[refused] = "550 5.1.1 No such user here"
    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    started = time.time()

    others = set(emails) - {refused}
    last = smtp_server.mailbox.wait_for_recipients(others, timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": COUNT - 1, "failed": 1}, 20,
               "every row final")
    time.sleep(2)  # several relay sweeps: the dead letter must stay dead
    [dead] = [row for row in rows(fault_web) if row.status == "failed"]
    fault_figures(
        fault="5b. SMTP 550 for one recipient", accepted=accepted, delivered=len(others),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - started,
        notes=[f"dead letter after {dead.attempts} attempt: {dead.last_error}; "
               f"{COUNT - 1} others sent"],
    )
    assert dead.email == refused and dead.attempts == 1 and "550" in dead.last_error
    assert len(smtp_server.mailbox.refused) == 1  # asked once, never retried
    assert smtp_server.mailbox.recipients() == others
    assert smtp_server.mailbox.duplicates() == 0


def test_silent_smtp_server_times_out_and_the_worker_carries_on(
        fault_web: Flask, fault_env, smtp_server: SmtpServer, fault_worker, fault_figures):
    """A server that accepts the connection and never answers, for 4 s; then a real one."""
    worker = fault_worker
    emails = make_users(fault_web, 10)
    smtp_server.stop()
    silent = SilentServer(smtp_server.port).start()
    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    time.sleep(4)
    silent.stop()
    smtp_server.start()
    back_at = time.time()

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": 10}, 20, "every row recorded sent")
    timeouts = [a for a in attempts(fault_web) if a.outcome == "retrying"]
    timing = Settings.from_env(fault_env)
    durations = [seconds(a.finished_at) - seconds(a.started_at) for a in timeouts]
    fault_figures(
        fault="6. SMTP accepts, never answers (4 s)", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - back_at,
        notes=[f"{len(silent.connections)} silent connections, {len(timeouts)} attempts "
               f"timed out after {min(durations):.1f}-{max(durations):.1f}s "
               f"(SMTP_TIMEOUT {timing.smtp_timeout_seconds}s); worker alive: {worker.alive}"],
    )
    assert timeouts and max(durations) < timing.task_soft_time_limit
    assert worker.alive and "Hard time limit" not in worker.log
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
