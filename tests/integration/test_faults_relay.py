"""The relay with no beat: web and worker processes only, as `make web` + `make worker`.

Every worker relays; these check what that must not break (one send per email, with
several relays and skewed clocks) and what it must survive (SMTP and Redis outages, a
worker killed in the middle of a sweep).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import pytest
from flask import Flask
from sqlalchemy import select
from support.faults import (
    HttpResetRequests,
    ResetRequests,
    attempts,
    make_users,
    rows,
    statuses,
    wait_until,
)
from support.mailbox import SmtpServer
from support.processes import RedisServer, WebProcess, WorkerProcess

from shared.config import Settings
from shared.contract import EMAIL_QUEUE, SEND_PASSWORD_RESET, DeliveryPayload
from shared.database import db
from shared.db_clock import db_now
from shared.models import DeliveryKind, EmailDelivery, RelaySweep

pytestmark = pytest.mark.integration

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def sweep_record(app: Flask) -> RelaySweep | None:
    with app.app_context():
        record = db.session.get(RelaySweep, "outbox")
        if record is not None:
            db.session.expunge(record)
        return record


def node(worker: WorkerProcess) -> str:
    """The start of the worker's holder name on the sweep lease (`<node>@<host>:<pid>`)."""
    return worker.name.split("@")[0] + "@"


class HolderWatch:
    """Polls the sweep lease's holder in the background: which workers swept."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.seen: Counter[str] = Counter()
        self.leases: list[tuple[str, datetime]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HolderWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            record = sweep_record(self.app)
            if record is None or record.holder is None or record.lease_until is None:
                continue
            lease = (record.holder, record.lease_until)
            if not self.leases or self.leases[-1] != lease:
                self.leases.append(lease)
                self.seen[record.holder.split("@")[0] + "@"] += 1


def test_smtp_down_ten_seconds_every_email_within_a_backoff_of_its_return(
        fault_web: Flask, fault_env, smtp_server: SmtpServer, fault_worker, fault_figures):
    """No beat: the worker's own relay republishes each retry when it is due."""
    emails = make_users(fault_web, 20)
    smtp_server.stop()
    accepted = ResetRequests(fault_web.test_client()).ask_all(emails)
    time.sleep(10)
    smtp_server.start()
    back_at = time.time()

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
    wait_until(lambda: statuses(fault_web) == {"sent": 20}, 20, "every row recorded sent")
    timing = Settings.from_env(fault_env)
    tries = Counter(a.delivery_id for a in attempts(fault_web))
    bound = timing.retry_backoff_max + timing.outbox_relay_interval
    fault_figures(
        fault="R1. SMTP down 10 s, web + worker only", accepted=accepted,
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - back_at,
        notes=[f"attempts per email {min(tries.values())}-{max(tries.values())}; bound "
               f"backoff max {timing.retry_backoff_max}s + relay {timing.outbox_relay_interval}s"
               f" = {bound}s"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
    assert min(tries.values()) >= 3  # retried, by the relay alone
    # Each email's next attempt was at most one backoff away; the relay adds an interval.
    # The margin is for a loaded machine.
    assert last - back_at < bound + 6


def ask_all(asker: HttpResetRequests, emails: list[str]) -> None:
    for address in emails:
        asker.ask(address)


def test_any_number_of_web_and_worker_processes_send_each_email_exactly_once(
        fault_web: Flask, fault_env, smtp_server: SmtpServer, processes, fault_figures):
    """Two web processes and three workers (three relays), 150 resets over HTTP, the SMTP
    server refusing with 421 for the first seconds so most emails go through the relay."""
    emails = make_users(fault_web, 150)
    webs = [processes(WebProcess(fault_env)) for _ in range(2)]
    workers = [processes(WorkerProcess(fault_env)) for _ in range(3)]
    smtp_server.mailbox.reply = "421 4.7.0 Try again later, closing connection"
    askers = [HttpResetRequests(web.url) for web in webs]  # type: ignore[attr-defined]
    with HolderWatch(fault_web) as holders:
        threads = [threading.Thread(target=ask_all, args=(asker, emails[n::2]))
                   for n, asker in enumerate(askers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        time.sleep(3)
        smtp_server.mailbox.reply = "250 OK"
        back_at = time.time()
        last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=90)
        wait_until(lambda: statuses(fault_web) == {"sent": 150}, 30, "every row recorded sent")
        time.sleep(2)  # more sweeps, every row final: nothing may be sent again
    relays = sum(row.relays for row in rows(fault_web))
    fault_figures(
        fault="R2. 2 web + 3 workers, 421 for 3 s", accepted=len(emails),
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - back_at,
        notes=[f"{len(smtp_server.mailbox.received)} messages at the SMTP server for "
               f"{len(emails)} emails; {len(smtp_server.mailbox.refused)} refusals; {relays} "
               f"relays; sweep lease taken by {dict(holders.seen)}"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    assert len(smtp_server.mailbox.received) == len(emails)  # exactly once each
    assert smtp_server.mailbox.duplicates() == 0
    assert relays > 0
    # Every worker relays: more than one of them held the sweep lease.
    assert len([w for w in workers if holders.seen[node(w)]]) >= 2, holders.seen


def test_a_worker_killed_in_the_middle_of_a_sweep_is_taken_over_when_its_lease_ends(
        fault_web: Flask, fault_env, own_redis: RedisServer, smtp_server: SmtpServer,
        processes, fault_figures):
    """Two workers. One takes rows to relay and blocks publishing them (Redis frozen); it
    is SIGKILLed there. The other, trying all along, sweeps only once the dead one's sweep
    lease is over, and relays the rows the dead one took once their relay mark
    (OUTBOX_STALE_AFTER) has passed."""
    env = {**fault_env, "OUTBOX_RELAY_INTERVAL": "3"}
    lease = 0.9 * 3  # worker.relay.LEASE_SHARE of the interval
    emails = make_users(fault_web, 10)
    workers = [processes(WorkerProcess(env)) for _ in range(2)]
    assert own_redis.process is not None
    with HolderWatch(fault_web) as holders:
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            with fault_web.app_context():  # committed, never published: due at once
                for address in emails:
                    delivery = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, address)
                    delivery.relay_after = db_now()
                    db.session.add(delivery)
                db.session.commit()
            wait_until(lambda: all(row.relays == 1 for row in rows(fault_web)), 20,
                       "a worker took every row to relay")
            record = sweep_record(fault_web)  # the sweep that took them: it holds the lease
            assert record is not None and record.holder is not None
            [dead] = [w for w in workers if record.holder.startswith(node(w))]
            [survivor] = [w for w in workers if w is not dead]
            dead.kill()  # inside send_task, waiting on the frozen Redis
            killed_at = time.time()
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)
        last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=60)
        wait_until(lambda: statuses(fault_web) == {"sent": 10}, 20, "every row recorded sent")
    dead_lease_end = record.lease_until
    taken_over = [until for holder, until in holders.leases
                  if holder.startswith(node(survivor)) and until > dead_lease_end]
    fault_figures(
        fault="R3. worker SIGKILL mid-sweep (Redis frozen)", accepted=len(emails),
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - killed_at,
        notes=[f"the other worker's next sweep lease began "
               f"{(taken_over[0] - timedelta(seconds=lease) - dead_lease_end).total_seconds():.1f}"
               f" s after the dead one's ended; relays per row "
               f"{sorted({row.relays for row in rows(fault_web)})}"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
    # No sweep by the survivor began before the dead worker's lease ended (database clock;
    # SQLite's clock has milliseconds).
    assert taken_over and taken_over[0] - timedelta(seconds=lease) >= (
        dead_lease_end - timedelta(milliseconds=1))
    assert all(row.relays >= 2 for row in rows(fault_web))  # taken by one, then the other


def _faketime_env() -> dict[str, str]:
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "+10m",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _pids(worker: WorkerProcess) -> set[int]:
    assert worker.process is not None
    parent = psutil.Process(worker.process.pid)
    return {parent.pid} | {child.pid for child in parent.children(recursive=True)}


def test_workers_whose_clocks_disagree_by_minutes_never_share_a_row(
        fault_web: Flask, fault_env, database_url: str, smtp_server: SmtpServer, processes,
        fault_figures):
    """One worker's clock runs ten minutes ahead (libfaketime). Every message is sent
    twice, so copies of a row reach one worker while the other is sending it: by the
    skewed clock every lease has long ended, by the database's it has not."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs a database server: on SQLite 'now' is each process's own clock "
                    "(run with TEST_DATABASE_URL, e.g. `make test-postgres`)")
    if not LIBFAKETIME.exists() or shutil.which("date") is None:
        pytest.skip(f"libfaketime is not installed ({LIBFAKETIME}): apt-get install libfaketime")
    ahead = int(subprocess.run(["date", "+%s"], env={**os.environ, **_faketime_env()},
                               capture_output=True, text=True, check=True).stdout) - time.time()
    assert 590 < ahead < 610, f"libfaketime did not move the clock ({ahead:.0f} s)"

    smtp_server.mailbox.reply_delay = 0.3  # each send holds its row a while
    emails = make_users(fault_web, 60)
    normal = processes(WorkerProcess(fault_env))
    skewed = processes(WorkerProcess({**fault_env, **_faketime_env()}))
    requests = ResetRequests(fault_web.test_client())
    celery = fault_web.extensions["celery"]
    for address in emails:
        requests.ask(address)
        [row] = [r for r in rows(fault_web) if r.email == address]
        # A second copy of the message, as a redelivery or a relay would make.
        payload = DeliveryPayload(delivery_id=row.id)
        celery.send_task(SEND_PASSWORD_RESET, kwargs=payload.as_kwargs(), queue=EMAIL_QUEUE)
    started = time.time()

    last = smtp_server.mailbox.wait_for_recipients(set(emails), timeout=90)
    wait_until(lambda: statuses(fault_web) == {"sent": 60}, 30, "every row recorded sent")
    time.sleep(2)
    history = attempts(fault_web)
    by_pid = Counter(int(a.worker.rsplit(":", 1)[1]) for a in history)
    normal_sends = sum(n for pid, n in by_pid.items() if pid in _pids(normal))
    skewed_sends = sum(n for pid, n in by_pid.items() if pid in _pids(skewed))
    refused_held = len(re.findall(r"event=delivery\.skipped .*status=sending", skewed.log))
    fault_figures(
        fault="R4. one worker's clock 10 min ahead", accepted=len(emails),
        delivered=len(smtp_server.mailbox.recipients()),
        duplicates=smtp_server.mailbox.duplicates(), recovery_seconds=last - started,
        notes=[f"sends: {normal_sends} by the on-time worker, {skewed_sends} by the skewed "
               f"one; the skewed one refused {refused_held} copies of rows being sent"],
    )
    assert smtp_server.mailbox.recipients() == set(emails)
    assert smtp_server.mailbox.duplicates() == 0
    assert len(history) == len(emails)  # one claim per row: no lease was taken over
    assert normal_sends > 0 and skewed_sends > 0
    with fault_web.app_context():  # nothing the skewed worker wrote is in its future
        latest = db.session.scalar(select(EmailDelivery.updated_at)
                                   .order_by(EmailDelivery.updated_at.desc()).limit(1))
        assert latest <= db.session.scalar(select(db_now()))
