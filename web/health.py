"""`GET /healthz`: can this process reach its database and its broker, and is mail moving?

The status code speaks for this web process only: 503 when its database or its broker is
unreachable, which a restart or a load balancer can act on. A stalled outbox (an email due
and nobody taking it, or a relay that stopped sweeping) is the workers' trouble: compose
restarts web when its health check fails, and restarting web would not send one email
more. So a stall answers 200 with `"status": "stalled"` and the reasons in `outbox`;
Prometheus alerts on the same numbers from `/metrics` (deploy/prometheus/alerts.yml).
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from shared.contract import EMAIL_QUEUE
from shared.database import db
from shared.outbox_watch import watch_outbox
from shared.redis_client import redis_client

bp = Blueprint("health", __name__)


def _check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        return f"error: {type(exc).__name__}"
    return "ok"


def _check_broker() -> tuple[str, int | None]:
    settings = current_app.config["SETTINGS"]
    client = redis_client(settings, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
        return "ok", int(client.llen(EMAIL_QUEUE))
    except redis.RedisError as exc:
        return f"error: {type(exc).__name__}", None
    finally:
        client.close()


def _check_outbox(stall_after: int) -> dict[str, Any]:
    try:
        watch = watch_outbox()
    except SQLAlchemyError as exc:
        db.session.rollback()
        return {"status": f"error: {type(exc).__name__}"}
    reasons = watch.stalls(stall_after)
    return {
        "status": "stalled" if reasons else "ok",
        "reasons": reasons,
        "oldest_due_seconds": _rounded(watch.oldest_due_seconds),
        "last_sweep_seconds": _rounded(watch.last_sweep_seconds),
        "stall_after_seconds": stall_after,
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    settings = current_app.config["SETTINGS"]
    database = _check_database()
    broker, queue_length = _check_broker()
    healthy = database == "ok" and broker == "ok"
    outbox = _check_outbox(settings.outbox_stall_after) if database == "ok" else None
    stalled = outbox is not None and outbox["status"] == "stalled"
    body: dict[str, Any] = {
        "status": "unavailable" if not healthy else "stalled" if stalled else "ok",
        "database": database,
        "broker": broker,
        "email_queue_length": queue_length,
        "outbox": outbox,
    }
    return jsonify(body), 200 if healthy else 503
