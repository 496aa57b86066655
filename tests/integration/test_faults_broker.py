"""Faults around the broker and the web tier: Redis crashes, Redis down, web killed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from support.faults import (
    HttpResetRequests,
    ResetRequests,
    make_users,
    rows,
    statuses,
    wait_until,
)
from support.mailbox import SmtpServer
from support.processes import RedisServer, WebProcess, WorkerProcess

from shared.contract import EMAIL_QUEUE
from shared.database import db
from shared.models import DeliveryKind, EmailDelivery

pytestmark = pytest.mark.integration

BURST = 100


def test_queued_tasks_survive_a_redis_crash(fault_web: Flask, fault_env, own_redis: RedisServer,
                                           smtp_server: SmtpServer, processes, fault_figures):
    """100 tasks waiting, no worker; Redis is killed and restarted from its append-only file."""
    emails = make_users(fault_web, BURST)
    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    queued_before = own_redis.client().llen(EMAIL_QUEUE)
    time.sleep(1.1)  # appendfsync everysec: what a power cut could lose; a crash loses nothing
    own_redis.kill()
    own_redis.start()
    back_at = time.time()
    queued_after = own_redis.client().llen(EMAIL_QUEUE)

    # The relay waits longer than this test lasts: the restored queue is what delivers.
    processes(WorkerProcess({**fault_env, "OUTBOX_STALE_AFTER": "120"}))
    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": BURST}, 20, "every row recorded sent")
    fault_figures(
        fault="2. Redis SIGKILL + restart, 100 queued", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - back_at,
        notes=[f"queue length {queued_before} before the crash, {queued_after} after the "
               "restart (AOF); delivered by the worker alone, no relay"],
    )
    assert queued_before == queued_after == BURST
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
    assert all(row.relays == 0 for row in rows(fault_web))


def test_requests_during_a_broker_outage_are_answered_and_delivered_later(
        fault_web: Flask, fault_env, own_redis: RedisServer, smtp_server: SmtpServer,
        fault_worker, fault_figures):
    """Redis down while 100 users ask: each gets the normal answer, fast; all sent later."""
    emails = make_users(fault_web, BURST)
    own_redis.kill()
    requests = ResetRequests(fault_web.test_client())
    accepted = requests.ask_all(emails)
    marked = sum(1 for row in rows(fault_web) if row.relay_after is not None)
    time.sleep(2)  # the worker notices the outage and start reconnecting
    own_redis.start()
    back_at = time.time()

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=90)
    wait_until(lambda: statuses(fault_web) == {"sent": BURST}, 20, "every row recorded sent")
    fault_figures(
        fault="3. broker down during 100 requests", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - back_at,
        notes=[requests.timing_note() + f" with Redis down; {marked} rows marked for the relay",
               f"{sum(row.relays for row in rows(fault_web))} relay takes, counting the "
               "sweeps whose first publish failed while Redis was down (the worker "
               "reconnects with backoff)"],
    )
    assert marked == BURST
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0


def test_a_worker_paused_through_a_redis_restart_resumes(
        fault_web: Flask, fault_env, own_redis: RedisServer, smtp_server: SmtpServer,
        fault_worker, fault_figures):
    """The worker is frozen (SIGSTOP: a starved CPU, a paused VM) while Redis dies and
    comes back, so it only sees its dead connections once the new server is up."""
    worker = fault_worker
    emails = make_users(fault_web, 20)
    own_redis.kill()
    worker.pause()
    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    own_redis.start()
    time.sleep(3)
    worker.resume()
    resumed_at = time.time()

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    fault_figures(
        fault="3b. worker paused through a Redis restart", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - resumed_at,
        notes=["redis-py's own retry would reconnect the pub/sub socket and block on it "
               "forever; with it off, kombu restarts the consumer"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0


def test_a_worker_mid_send_when_redis_is_killed_stays_up_and_delivers(
        fault_web: Flask, fault_env, own_redis: RedisServer, smtp_server: SmtpServer,
        fault_worker, fault_figures):
    """Redis SIGKILLed at the tail of a burst, as the worker waits in BRPOP for more work
    while a slow SMTP server holds its last send, not yet acknowledged (acks_late). The
    same worker process reconnects once Redis is back and delivers the rest of the burst."""
    worker = fault_worker
    emails = make_users(fault_web, BURST)
    first, rest = emails[:BURST // 2], emails[BURST // 2:]
    smtp_server.mailbox.reply_delay = 0.15  # commits each email, then answers slowly
    smtp_server.mailbox.reply_delays[first[-1]] = 0.7  # slower still, within SMTP_TIMEOUT
    requests = ResetRequests(fault_web.test_client())
    accepted = requests.ask_all(first)
    wait_until(lambda: first[-1] in smtp_server.mailbox.recipients()
               and own_redis.blocked_pops() > 0, 60,
               "the worker waiting for work while its last send is unacknowledged")
    in_flight = {row.id for row in rows(fault_web) if row.status == "sending"}
    own_redis.kill()
    time.sleep(1)  # the worker sees the dead connection and closes it while Redis is down
    own_redis.start()
    back_at = time.time()
    accepted += requests.ask_all(rest)

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": BURST}, 20, "every row recorded sent")
    lost_acks = worker.log.count("Couldn't ack")
    fault_figures(
        fault="3c. Redis SIGKILL with a send unacknowledged", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - back_at,
        notes=[f"{len(in_flight)} row 'sending' at the kill, the worker waiting in BRPOP; "
               f"worker alive afterwards: {worker.alive}; {lost_acks} acknowledgement(s) "
               "lost with the old connection (redelivered later, skipped as sent)"],
    )
    assert worker.alive and "Unrecoverable error" not in worker.log
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0


def test_web_process_killed_right_after_answering_loses_nothing(
        fault_web: Flask, fault_env, smtp_server: SmtpServer, processes, fault_figures):
    """gunicorn SIGKILLed the moment the last of 100 users has seen "Check your email"."""
    emails = make_users(fault_web, BURST)
    processes(WorkerProcess(fault_env))
    web = processes(WebProcess(fault_env))
    asker = HttpResetRequests(web.url)  # type: ignore[attr-defined]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(asker.ask, emails))
    web.kill()
    killed_at = time.time()
    sent_at_kill = statuses(fault_web).get("sent", 0)

    # The other crash window: rows committed by a web process that died before publishing.
    orphans = make_users(fault_web, 10, prefix="orphan")
    with fault_web.app_context():
        for address in orphans:
            db.session.add(EmailDelivery.new(DeliveryKind.PASSWORD_RESET, address))
        db.session.commit()

    everyone = set(emails) | set(orphans)
    last = smtp_server.mailbox.wait_for_recipients(everyone, timeout=60)
    fault_figures(
        fault="7. web SIGKILL right after answering", accepted=BURST,
        delivered=len(smtp_server.mailbox.recipients() & set(emails)),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - killed_at,
        notes=[f"{sent_at_kill} of {BURST} already sent at the kill; plus {len(orphans)} rows "
               "committed but never published (a web process killed in between): all "
               f"{len(smtp_server.mailbox.recipients() & set(orphans))} relayed and sent"],
    )
    assert smtp_server.mailbox.recipients() == everyone
    assert smtp_server.mailbox.duplicates() == 0



def test_embedded_redis_keeps_queued_emails(own_redis: RedisServer):
    """`make run`'s Redis (scripts/embedded_redis.py): append-only file on, never evicts."""
    config = own_redis.client().config_get("*")
    assert config["appendonly"] == "yes"
    assert config["maxmemory-policy"] == "noeviction"
    assert config["appendfsync"] == "everysec"
