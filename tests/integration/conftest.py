"""Real parts on loopback: a Redis server process, an aiosmtpd server, a celery worker process."""

from __future__ import annotations

from collections.abc import Iterator

import kombu.pools
import pytest
import redis
from flask import Flask
from support.mailbox import SmtpServer
from support.processes import RedisServer, WorkerProcess
from support.redis_db import ClaimedRedis

from scripts.embedded_redis import free_port
from shared.config import Settings
from shared.database import db
from web import create_app


@pytest.fixture(scope="module")
def redis_url(standalone_redis: ClaimedRedis | None) -> Iterator[str]:
    """The standalone Redis of TEST_REDIS_URL (emptied per module), else our own server."""
    if standalone_redis is not None:
        standalone_redis.flush()
        yield standalone_redis.url
        standalone_redis.flush()
        return
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def stack_env(database_url: str, redis_url: str, smtp_server: SmtpServer) -> dict[str, str]:
    """The environment an operator would give both tiers."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "integration-secret-key-0123456789abcdef",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "MAIL_DEFAULT_SENDER": "Microblog <no-reply@example.test>",
        "SERVER_NAME": "microblog.example.test",
        "PREFERRED_URL_SCHEME": "https",
    }


@pytest.fixture
def empty_broker(redis_url: str, standalone_redis: ClaimedRedis | None) -> str:
    """Each test starts with an empty broker: a worker stopped right after the SMTP server
    accepted can hand its not-yet-acknowledged message back to Redis (acks_late)."""
    if standalone_redis is not None:
        standalone_redis.flush()  # keeps this session's claim on the database
    else:
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()
    return redis_url


@pytest.fixture
def web_app(stack_env: dict[str, str], empty_broker: str) -> Iterator[Flask]:
    kombu.pools.reset()
    app = create_app(Settings.from_env(stack_env))
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    kombu.pools.reset()


@pytest.fixture
def worker(stack_env: dict[str, str], web_app: Flask) -> Iterator[WorkerProcess]:
    process = WorkerProcess(stack_env).start()
    yield process
    process.stop()
