"""Fixtures: apps built from explicit settings, a logged-in user, real servers when marked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fakeredis
import kombu.pools
import kombu.transport.redis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.factories import make_user

from shared.config import Settings
from shared.database import db
from shared.models import User
from web import create_app
from worker.app import create_worker_app

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="testing",
        secret_key=TEST_SECRET,
        database_url=f"sqlite:///{tmp_path / 'test.db'}",
        redis_url="redis://127.0.0.1:1/0",
        mail_server="127.0.0.1",
        mail_port=1,
        mail_default_sender="Microblog <no-reply@example.test>",
        server_name="microblog.example.test",
        preferred_url_scheme="https",
        ratelimit_storage_uri="memory://",
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
        return self.client.get("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def user(app: Flask) -> User:
    return make_user(app)
