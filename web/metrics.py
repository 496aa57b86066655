"""`GET /metrics`: the email outbox and queue in Prometheus's text format, for operators.

Flower cannot see how many tasks wait in a Redis list, nor outbox rows that never reached
Redis; this can. It answers only with `Authorization: Bearer <METRICS_TOKEN>` and is a 404
when no token is configured, because these counts move with every reset request: watching
`no_account` against `sent` would tell a visitor whether an address has an account.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

import redis
from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from shared.clock import utcnow
from shared.config import Settings
from shared.contract import EMAIL_QUEUE
from shared.database import db
from shared.models import DeliveryStatus, EmailDelivery
from shared.outbox_watch import watch_outbox
from shared.redis_client import redis_client

bp = Blueprint("metrics", __name__)


def _queue_length(settings: Settings) -> int | None:
    client = redis_client(settings, socket_timeout=1, socket_connect_timeout=1)
    try:
        return int(client.llen(EMAIL_QUEUE))
    except redis.RedisError:
        return None
    finally:
        client.close()


class OutboxCollector(Collector):
    """Reads the numbers at scrape time: nothing to keep in step across gunicorn workers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queue_length = _queue_length(self.settings)
        yield GaugeMetricFamily("microblog_broker_up", "1 if Redis answered this scrape",
                                value=int(queue_length is not None))
        if queue_length is not None:
            yield GaugeMetricFamily(
                "microblog_email_queue_length",
                "Email tasks waiting in the Redis queue, not yet taken by a worker",
                value=queue_length)
        try:
            counts: dict[str, int] = {
                status: count for status, count in db.session.execute(
                    select(EmailDelivery.status, func.count()).group_by(EmailDelivery.status))
            }
            oldest = db.session.scalar(select(func.min(EmailDelivery.created_at))
                                       .where(EmailDelivery.status == DeliveryStatus.QUEUED))
        except SQLAlchemyError:
            db.session.rollback()
            yield GaugeMetricFamily("microblog_database_up", "1 if the database answered",
                                    value=0)
            return
        yield GaugeMetricFamily("microblog_database_up", "1 if the database answered", value=1)
        rows = GaugeMetricFamily("microblog_email_deliveries",
                                 "Email outbox rows by delivery status", labels=["status"])
        for status in DeliveryStatus:
            rows.add_metric([status.value], counts.get(status.value, 0))
        yield rows
        age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "microblog_email_oldest_queued_seconds",
            "Age of the oldest outbox row still waiting for a worker (0 when none)",
            value=age)
        yield from self._stall_metrics()

    def _stall_metrics(self) -> Iterator[GaugeMetricFamily]:
        """Ages by the database clock, and the thresholds the alert rules compare them with.

        Left out when they cannot be read (say, the relay's table not migrated yet): the
        counts above still stand, and the missing series is what the alert rules notice.
        """
        try:
            watch = watch_outbox()
        except SQLAlchemyError:
            db.session.rollback()
            return
        yield GaugeMetricFamily(
            "microblog_email_due",
            "Outbox rows due that nobody works on: queued, retry time passed, lease ended",
            value=watch.due)
        yield GaugeMetricFamily(
            "microblog_email_oldest_due_seconds",
            "How long the longest-waiting due row has been due (0 when none)",
            value=watch.oldest_due_seconds or 0.0)
        if watch.last_sweep_seconds is not None:  # absent until the relay records a sweep
            yield GaugeMetricFamily(
                "microblog_relay_last_sweep_age_seconds",
                "Seconds since the outbox relay last finished a sweep",
                value=watch.last_sweep_seconds)
        yield GaugeMetricFamily(
            "microblog_outbox_relay_interval_seconds",
            "OUTBOX_RELAY_INTERVAL: how often the relay is meant to sweep",
            value=self.settings.outbox_relay_interval)
        yield GaugeMetricFamily(
            "microblog_outbox_stall_after_seconds",
            "OUTBOX_STALL_AFTER: how long a due row may wait before it counts as stalled",
            value=self.settings.outbox_stall_after)


def _authorized(token: str) -> bool:
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(),
                                                              token.encode())


@bp.get("/metrics")
def metrics() -> Response:
    settings: Settings = current_app.config["SETTINGS"]
    if settings.metrics_token is None:
        abort(404)
    if not _authorized(settings.metrics_token.get_secret_value()):
        return Response("A bearer token is required.\n", 401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxCollector(settings))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
