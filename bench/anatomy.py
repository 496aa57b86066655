"""Section 6: where one reset's time goes inside the worker, step by step, in this process.

It runs the worker's own functions in the order `worker.delivery.deliver` runs them
(claim, account lookup and link generation, attempt record and commit, token and both
templates, MIME build, SMTP over the kept connection, finish, event line) against the
run's database and sink, one thread, no Celery. Then it runs `deliver` itself back to
back: the rate one process could reach without Celery, which with the no-op task rate
brackets where the worker's time goes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from bench.data import insert_deliveries
from bench.stats import percentile, rate
from shared.config import Settings
from shared.contract import reset_password_url
from shared.database import db
from shared.emails import mask_email
from shared.events import delivery_event
from shared.models import DeliveryStatus, User
from shared.tokens import issue_reset_token
from worker import outbox, smtp
from worker.app import create_worker_app
from worker.delivery import deliver
from worker.kinds import KINDS, Skip
from worker.rendering import Recipient, password_reset_message

STEPS = ("app_context", "claim", "account_and_generation", "attempt_and_commit",
         "token_and_templates", "mime_build", "smtp_send", "finish", "event_log",
         "session_remove")


def _event_log_to(path: Path) -> logging.Handler:
    """The worker logs each event at INFO to its output; do the same, to a file."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    events = logging.getLogger("delivery")
    events.addHandler(handler)
    events.setLevel(logging.INFO)
    events.propagate = False
    return handler


Clock = tuple[float, float]


def _one_reset(app: Flask, settings: Settings, delivery_id: str,
               timings: dict[str, list[Clock]]) -> None:
    def clock() -> Clock:
        return time.perf_counter(), time.thread_time()

    def mark(step: str, since: Clock) -> Clock:
        now = clock()
        timings[step].append((now[0] - since[0], now[1] - since[1]))
        return now

    t = clock()
    with app.app_context():
        t = mark("app_context", t)
        row = outbox.take(delivery_id, timedelta(seconds=settings.delivery_lease_seconds))
        assert row is not None
        t = mark("claim", t)
        kind = KINDS[row.kind]
        recipient = kind.resolve(row, settings)
        assert not isinstance(recipient, Skip)
        t = mark("account_and_generation", t)
        claim = outbox.open_attempt(row)
        t = mark("attempt_and_commit", t)
        message = kind.compose(row, recipient, settings)
        t = mark("token_and_templates", t)
        smtp.wire_bytes(message)  # smtp.send builds it again; timed here on its own
        t = mark("mime_build", t)
        smtp.send(message)
        t = mark("smtp_send", t)
        outbox.finish(claim, DeliveryStatus.SENT)
        t = mark("finish", t)
        delivery_event("delivery.sent", row.id, to=mask_email(row.email), attempt=row.attempts)
        t = mark("event_log", t)
        db.session.remove()
        mark("session_remove", t)


def representative_message(env: dict[str, str], email: str) -> bytes:
    """The bytes the worker sends for `email`'s account: what the raw smtplib rows send too."""
    settings = Settings.from_env(env)
    worker_app = create_worker_app(settings)
    with worker_app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None
        token = issue_reset_token(settings.secret_key.get_secret_value(), user.id,
                                  user.password_hash,
                                  ttl=timedelta(minutes=settings.reset_token_minutes),
                                  generation=user.reset_generation)
        link = reset_password_url(settings.link_base_url, token)
        recipient = Recipient(user.id, user.username, user.email, user.password_hash)
        message = password_reset_message(recipient, link, settings.reset_token_minutes)
        data = smtp.wire_bytes(message)
        db.session.remove()
        db.engine.dispose()
    return data


def task_anatomy(env: dict[str, str], writer: Flask, recipients: Sequence[str],
                 log_dir: Path) -> dict:
    settings = Settings.from_env(env)
    worker_app = create_worker_app(settings)
    handler = _event_log_to(log_dir / "anatomy-events.log")
    try:
        half = len(recipients) // 2
        step_ids = insert_deliveries(writer, recipients[:half])
        whole_ids = insert_deliveries(writer, recipients[half:])
        timings: dict[str, list[Clock]] = {step: [] for step in STEPS}
        for delivery_id in step_ids:
            _one_reset(worker_app, settings, delivery_id, timings)
        started = time.perf_counter()
        for delivery_id in whole_ids:
            with worker_app.app_context():
                outcome = deliver(delivery_id)
                db.session.remove()
            if outcome.status != DeliveryStatus.SENT.value:
                raise RuntimeError(f"in-process delivery ended {outcome.status}")
        whole_seconds = time.perf_counter() - started
    finally:
        with worker_app.app_context():
            smtp.close_connection()
            db.engine.dispose()
        events = logging.getLogger("delivery")
        events.removeHandler(handler)
        events.propagate = True
        handler.close()
    wall = {step: round(percentile([w for w, _ in got], 0.5) * 1e6, 1)
            for step, got in timings.items()}
    cpu = {step: round(percentile([c for _, c in got], 0.5) * 1e6, 1)
           for step, got in timings.items()}
    return {
        "samples": half,
        "median_us": wall,
        # This process's own CPU: what the step costs a core, whatever else the machine runs.
        "median_cpu_us": cpu,
        "sum_of_medians_us": round(sum(wall.values()), 1),
        "sum_of_cpu_medians_us": round(sum(cpu.values()), 1),
        "in_process_emails_per_s": rate(len(whole_ids), whole_seconds),
    }
