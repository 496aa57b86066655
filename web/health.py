"""`GET /healthz`: can this process reach its database and its broker?"""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from shared.contract import EMAIL_QUEUE
from shared.database import db
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


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    database = _check_database()
    broker, queue_length = _check_broker()
    healthy = database == "ok" and broker == "ok"
    body: dict[str, Any] = {
        "status": "ok" if healthy else "unavailable",
        "database": database,
        "broker": broker,
        "email_queue_length": queue_length,
    }
    return jsonify(body), 200 if healthy else 503
