"""The run's database and queue contents: schema, accounts, and resets queued like the web does.

Rows are built by `EmailDelivery.new` (as the web tier builds them), inserted in bulk,
committed, then each id is published with the web tier's own `publish_delivery` by task
name. Accounts share one precomputed password hash: hashing is deliberately slow.
"""

from __future__ import annotations

import logging
import multiprocessing
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from celery import Celery
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import insert, select, update

from shared.celery_factory import make_celery
from shared.clock import utcnow
from shared.config import Settings
from shared.contract import SEND_PASSWORD_RESET, DeliveryPayload
from shared.database import db
from shared.db_clock import db_now
from shared.models import DeliveryKind, DeliveryStatus, EmailDelivery, User
from shared.passwords import password_hashing
from web import create_app, migrations_directory
from web.publisher import publish_delivery

CHUNK = 5000
PUBLISH_CHUNK = 2000
PARALLEL_FROM = 5000  # below this, one process publishes: spreading it out costs more
EMAIL_DOMAIN = "example.com"  # a form-valid domain; nothing leaves loopback


def stack_environment(database_url: str, redis_url: str, smtp_port: int,
                      web_port: int) -> dict[str, str]:
    """What an operator would give both tiers; production mode, so the production checks run."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "bench-" + secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "MAIL_DEFAULT_SENDER": "Microblog <no-reply@example.org>",
        "SERVER_NAME": "microblog.example.org",
        "PREFERRED_URL_SCHEME": "https",
        "TRUSTED_PROXIES": "0",
        "PORT": str(web_port),
        # A load test from one loopback address: rate limits would throttle it (by design).
        "RATELIMIT_ENABLED": "false",
    }


def control_app(env: dict[str, str]) -> Flask:
    """A web-tier app in this process: it writes rows and publishes as a request would."""
    app = create_app(Settings.from_env(env))
    with app.app_context():
        upgrade(directory=migrations_directory())
    logging.getLogger().setLevel(logging.WARNING)
    return app


def address(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}@{EMAIL_DOMAIN}"


def create_users(app: Flask, emails: Sequence[str]) -> None:
    with app.app_context():
        password_hash = password_hashing().hash(secrets.token_urlsafe(16))
    now = utcnow()
    rows = [
        {"username": email.partition("@")[0], "email": email, "password_hash": password_hash,
         "created_at": now}
        for email in emails
    ]
    with app.app_context():
        for start in range(0, len(rows), CHUNK):
            db.session.execute(insert(User), rows[start:start + CHUNK])
        db.session.commit()


@dataclass(frozen=True)
class Enqueued:
    count: int
    insert_seconds: float
    publish_seconds: float
    publishers: int

    @property
    def total_seconds(self) -> float:
        return self.insert_seconds + self.publish_seconds

    def as_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "rows_per_s": round(self.count / self.insert_seconds, 1),
            "publish_per_s": round(self.count / self.publish_seconds, 1),
            "enqueue_per_s": round(self.count / self.total_seconds, 1),
            "seconds": round(self.total_seconds, 2),
            "publisher_processes": self.publishers,
        }


def insert_deliveries(app: Flask, recipients: Sequence[str]) -> list[str]:
    """Commit one outbox row per recipient, built as the web tier builds it; return the ids."""
    columns = [column.key for column in EmailDelivery.__table__.columns]
    rows = []
    with app.app_context():
        # `new` stamps rows with the database's clock in SQL; a bulk insert takes values.
        now = db.session.scalar(select(db_now()))
        for email in recipients:
            delivery = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, email)
            delivery.created_at = delivery.updated_at = now
            rows.append({key: getattr(delivery, key) for key in columns})
        for start in range(0, len(rows), CHUNK):
            db.session.execute(insert(EmailDelivery), rows[start:start + CHUNK])
        db.session.commit()
    return [row["id"] for row in rows]


_publisher_celery: Celery | None = None


def _start_publisher(env: dict[str, str]) -> None:
    """In each publishing process: the same Celery app the web tier builds in `create_app`."""
    global _publisher_celery
    _publisher_celery = make_celery(Settings.from_env(env), "web")


def _publish_ids(ids: Sequence[str]) -> int:
    assert _publisher_celery is not None
    failures = 0
    for delivery_id in ids:
        payload = DeliveryPayload(delivery_id=delivery_id)
        failures += not publish_delivery(_publisher_celery, SEND_PASSWORD_RESET, payload)
    return failures


class Publishers:
    """Processes that publish like web workers do: one `publish_delivery` call per reset.

    One Python process publishes about as fast as one core runs kombu's publish path, so a
    large queue is published by one process per core, as several gunicorn workers would.
    """

    def __init__(self, env: dict[str, str], processes: int) -> None:
        self.processes = processes
        context = multiprocessing.get_context("spawn")
        self.pool = context.Pool(processes, initializer=_start_publisher, initargs=(env,))
        self.pool.map(_publish_ids, [[] for _ in range(processes)])  # imports done before timing

    def publish(self, ids: Sequence[str]) -> int:
        size = max(1, min(PUBLISH_CHUNK, len(ids) // self.processes + 1))
        chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
        return sum(self.pool.map(_publish_ids, chunks, chunksize=1))

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


def enqueue_resets(app: Flask, recipients: Sequence[str],
                   publishers: Publishers | None = None) -> Enqueued:
    """Commit the rows, then publish each id by task name with the web tier's publisher."""
    celery = app.extensions["celery"]
    started = time.perf_counter()
    ids = insert_deliveries(app, recipients)
    inserted = time.perf_counter()
    if publishers is not None and len(ids) >= PARALLEL_FROM:
        failures, processes = publishers.publish(ids), publishers.processes
    else:
        failures, processes = 0, 1
        for delivery_id in ids:
            payload = DeliveryPayload(delivery_id=delivery_id)
            failures += not publish_delivery(celery, SEND_PASSWORD_RESET, payload)
    published = time.perf_counter()
    if failures:
        raise RuntimeError(f"{failures} of {len(ids)} publishes failed")
    return Enqueued(len(ids), inserted - started, published - inserted, processes)


def purge_email_queue(app: Flask) -> int:
    """Drop whatever is still queued in Redis, and retire the rows it was for.

    Every worker relays the outbox: a row left `queued` would be republished once stale
    and sent in the middle of a later measurement. Rows being sent are left to finish.
    """
    purged = int(app.extensions["celery"].control.purge() or 0)
    with app.app_context():
        db.session.execute(
            update(EmailDelivery)
            .where(EmailDelivery.status.in_((DeliveryStatus.QUEUED.value,
                                             DeliveryStatus.RETRYING.value)))
            .values(status=DeliveryStatus.FAILED.value, last_error="bench: purged")
        )
        db.session.commit()
    return purged
