"""Fixtures: apps built from explicit settings, a logged-in user, real servers when marked.

By default the database is a fresh SQLite file per test and integration tests start their
own Redis. `TEST_DATABASE_URL` (a PostgreSQL server) and `TEST_REDIS_URL` (a standalone
Redis) run the same tests against those servers instead: `make test-services`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import kombu.pools
import kombu.transport.redis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from support.databases import PostgresServer
from support.factories import make_user
from support.redis_db import ClaimedRedis
from support.sentinel import SentinelGroup, sentinel_missing

from shared.config import Settings
from shared.database import db
from shared.models import User
from shared.passwords import PasswordHashing
from web import create_app
from worker.app import create_worker_app

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
CHEAP_PASSWORD_HASH = "argon2id:m=8,t=1,p=1"


def pytest_report_header() -> list[str]:
    database = os.environ.get("TEST_DATABASE_URL") or "SQLite (a file per test)"
    broker = os.environ.get("TEST_REDIS_URL") or "embedded redis-server (one per module)"
    return [f"database: {database}", f"broker: {broker}"]


@pytest.fixture(autouse=True)
def _dispose_engines_of_apps_built_in_the_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests build many short-lived apps; close each one's pooled connections when the test
    ends, rather than leave them to the garbage collector (psycopg warns from __del__)."""
    engines: list[Engine] = []
    make_engine = db._make_engine

    def recording(*args: Any, **kwargs: Any) -> Engine:
        engine = make_engine(*args, **kwargs)
        engines.append(engine)
        return engine

    monkeypatch.setattr(db, "_make_engine", recording)
    yield
    for engine in engines:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """The PostgreSQL server named by TEST_DATABASE_URL, or None for SQLite."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield None
        return
    server = PostgresServer(url)
    server.drop_abandoned()
    yield server
    server.drop_created()


@pytest.fixture(scope="session")
def session_database(postgres_server: PostgresServer | None) -> str | None:
    """This session's own PostgreSQL database (emptied after every test), or None."""
    return postgres_server.create() if postgres_server else None


@pytest.fixture
def database_url(tmp_path: Path, postgres_server: PostgresServer | None,
                 session_database: str | None) -> Iterator[str]:
    """An empty database for one test: a SQLite file, or the session's PostgreSQL database."""
    if postgres_server is None or session_database is None:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    yield session_database
    postgres_server.reset(session_database)


@pytest.fixture(scope="session")
def standalone_redis() -> Iterator[ClaimedRedis | None]:
    """A claimed database on the Redis server named by TEST_REDIS_URL, or None."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        yield None
        return
    claimed = ClaimedRedis(url).claim()
    yield claimed
    claimed.release()


@pytest.fixture
def sentinel_group() -> Iterator[SentinelGroup]:
    """A master, a replica and three Sentinels of this test's own, each side with its own
    password; the test may kill the master."""
    missing = sentinel_missing()
    if missing:
        print(f"skipped: {missing}")
        pytest.skip(missing)
    group = SentinelGroup(password="data-node-password", sentinel_password="sentinel-password")
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        env="development",
        testing=True,
        secret_key=TEST_SECRET,
        database_url=database_url,
        redis_url="redis://127.0.0.1:1/0",
        mail_server="127.0.0.1",
        mail_port=1,
        mail_default_sender="Microblog <no-reply@example.test>",
        server_name="microblog.example.test",
        preferred_url_scheme="https",
        ratelimit_storage_uri="memory://",
        # The smallest argon2id cost: the production cost stays in production.
        password_hash_method=CHEAP_PASSWORD_HASH,
        trusted_proxies=0,
    )


@pytest.fixture
def fake_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[fakeredis.FakeRedis]:
    """Route kombu's Redis connections to an in-memory server the test can read."""
    server = fakeredis.FakeServer()

    class Connection(fakeredis.FakeRedisConnection):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["server"] = server
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(kombu.transport.redis.Channel, "connection_class", Connection)
    # Celery keeps producers in kombu's process-wide pools, keyed by broker URL: start afresh.
    kombu.pools.reset()
    yield fakeredis.FakeRedis(server=server)
    kombu.pools.reset()


@pytest.fixture
def app(settings: Settings, fake_broker: fakeredis.FakeRedis) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def csrf_app(settings: Settings, fake_broker: fakeredis.FakeRedis) -> Iterator[Flask]:
    """The app exactly as deployed: CSRF on."""
    app = create_app(settings)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def worker_app(settings: Settings, app: Flask) -> Iterator[Flask]:
    """The worker's own app on the same database as `app`."""
    worker = create_worker_app(settings.with_overrides())
    worker.config["MAIL_SUPPRESS_SEND"] = True
    worker.extensions["mail"].suppress = True
    yield worker
    with worker.app_context():
        db.session.remove()
        db.engine.dispose()


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, username: str = "susan", password: str = "correct horse battery"):
        return self.client.post("/login", data={"username": username, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def password_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password hashed or checked from here on, as "hash" or "verify", in order."""
    calls: list[str] = []
    real_hash, real_verify = PasswordHashing.hash, PasswordHashing.verify

    def hash_(self: PasswordHashing, password: str) -> str:
        calls.append("hash")
        return real_hash(self, password)

    def verify(self: PasswordHashing, stored: str, password: str) -> bool:
        calls.append("verify")
        return real_verify(self, stored, password)

    monkeypatch.setattr(PasswordHashing, "hash", hash_)
    monkeypatch.setattr(PasswordHashing, "verify", verify)
    return calls


@pytest.fixture
def user(app: Flask) -> User:
    return make_user(app)
