"""Real parts on loopback: a Redis server process, an aiosmtpd server, a celery worker process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import kombu.pools
import pytest
from flask import Flask
from support.mailbox import SmtpServer
from support.processes import RedisServer, WorkerProcess

from scripts.embedded_redis import free_port
from shared.config import Settings
from shared.database import db
from web import create_app


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
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
def stack_env(tmp_path: Path, redis_url: str, smtp_server: SmtpServer) -> dict[str, str]:
    """The environment an operator would give both tiers."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "integration-secret-key-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'stack.db'}",
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "MAIL_DEFAULT_SENDER": "Microblog <no-reply@example.test>",
        "SERVER_NAME": "microblog.example.test",
        "PREFERRED_URL_SCHEME": "https",
    }


@pytest.fixture
def web_app(stack_env: dict[str, str]) -> Iterator[Flask]:
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
