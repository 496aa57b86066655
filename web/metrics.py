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

bp = Blueprint("metrics", __name__)


def _queue_length(redis_url: str) -> int | None:
    client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
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
        queue_length = _queue_length(self.settings.redis_url)
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
