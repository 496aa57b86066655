"""The broker behind Redis Sentinel: the master is SIGKILLed in the middle of a burst of
reset requests, the Sentinels promote the replica, and every accepted request is
delivered exactly once.

Real processes: a master, a replica and three Sentinels (tests/support/sentinel.py), a
celery worker (which also runs the outbox relay) on REDIS_URL=sentinel://..., an aiosmtpd
server; the web tier is the app itself, publishing through kombu's Sentinel channel.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask
from support.faults import SHORT_TIMEOUTS, ResetRequests, make_users, rows, statuses, wait_until
from support.mailbox import SmtpServer
from support.sentinel import SentinelGroup

pytestmark = pytest.mark.integration

BURST = 30
KILL_AFTER = 10


@pytest.fixture
def redis_url(sentinel_group: SentinelGroup) -> str:
    return sentinel_group.url()


@pytest.fixture
def fault_env(stack_env: dict[str, str], sentinel_group: SentinelGroup) -> dict[str, str]:
    """The fault tests' environment (see conftest.py), with the broker behind Sentinel."""
    env = {**stack_env, **sentinel_group.env()}
    env.update(SHORT_TIMEOUTS)
    env["RATELIMIT_ENABLED"] = "false"
    return env


def test_a_master_killed_mid_burst_fails_over_and_every_email_goes_once(
        fault_web: Flask, fault_env, sentinel_group: SentinelGroup, smtp_server: SmtpServer,
        fault_worker, fault_figures):
    worker = fault_worker
    smtp_server.mailbox.reply_delay = 0.1  # some sends still open when the master dies
    emails = make_users(fault_web, BURST)
    requests = ResetRequests(fault_web.test_client())
    accepted = requests.ask_all(emails[:KILL_AFTER])
    old_master = sentinel_group.kill_master()
    killed_at = time.time()
    accepted += requests.ask_all(emails[KILL_AFTER:])
    answered_at = time.time()
    failover_at = sentinel_group.wait_for_failover(timeout=60)

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=120)
    wait_until(lambda: statuses(fault_web) == {"sent": BURST}, 30, "every row recorded sent")
    after_failover = [m.received_at for m in smtp_server.mailbox.received
                      if m.received_at > failover_at]
    relayed = sum(row.relays for row in rows(fault_web))
    asked_after_kill = set(emails[KILL_AFTER:])
    first_of_those = min(m.received_at for m in smtp_server.mailbox.received
                         if asked_after_kill & set(m.envelope_to))
    fault_figures(
        fault="S. Sentinel: master SIGKILL mid-burst", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(),
        recovery_seconds=min(after_failover) - failover_at if after_failover else 0.0,
        notes=[f"killed the master after {KILL_AFTER} of {BURST} requests; "
               f"{requests.timing_note()}; the last answered {answered_at - killed_at:.1f}s "
               "after the kill",
               f"Sentinels named the new master {failover_at - killed_at:.1f}s after the "
               f"kill; the last email arrived {last - killed_at:.1f}s after it; "
               f"{relayed} publishes by the outbox relay; the first email of a request "
               f"made after the kill arrived {first_of_those - failover_at:.1f}s after the "
               "failover"],
    )
    assert sentinel_group.master_port != old_master
    assert accepted == BURST
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
    assert after_failover, "nothing was delivered through the new master"
    assert worker.alive
    assert "Unrecoverable error" not in worker.log
