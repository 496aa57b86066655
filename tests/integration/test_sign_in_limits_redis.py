"""Sign-in limits on a real Redis: the counters the deployed app keeps, under attack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from support.factories import PASSWORD, make_user

from shared.config import Settings
from shared.database import db
from web import create_app
from web.auth.device_cookies import COOKIE_NAME, COOKIE_PATH
from web.rate_limits import limiter

pytestmark = pytest.mark.integration


@pytest.fixture
def app(settings: Settings, redis_url: str, fake_broker) -> Iterator[Flask]:
    app = create_app(settings.with_overrides(ratelimit_storage_uri=redis_url,
                                             ratelimit_login_per_ip="50 per 5 minutes",
                                             ratelimit_login_per_username="3 per 5 minutes"))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    make_user(app, username="redis-susan", email="redis-susan@example.com")
    yield app
    with app.app_context():
        db.engine.dispose()
    limiter._storage_dead = False


def browser_at(app: Flask, remote_addr: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote_addr
    return client


def sign_in(client: FlaskClient, password: str) -> int:
    response = client.post("/login", data={"username": "redis-susan", "password": password})
    return 200 if response.headers.get("Location") == "/index" else response.status_code


def test_a_flooded_name_waits_while_its_owners_browser_signs_in(app: Flask, redis_url: str):
    owner = browser_at(app, "10.3.0.1")
    assert sign_in(owner, PASSWORD) == 200
    cookie = owner.get_cookie(COOKIE_NAME, path=COOKIE_PATH)

    codes = [sign_in(browser_at(app, f"10.3.1.{n}"), "a wrong guess") for n in range(5)]
    assert codes == [302, 302, 302, 429, 429]
    assert sign_in(browser_at(app, "10.3.2.1"), PASSWORD) == 429
    owner_again = browser_at(app, "10.3.0.1")
    owner_again.set_cookie(COOKIE_NAME, cookie.value, path=COOKIE_PATH)
    assert sign_in(owner_again, "a typo") == 302  # counted against this browser alone
    assert sign_in(owner_again, PASSWORD) == 200

    keys = " ".join(key.decode() for key in redis.Redis.from_url(redis_url).keys("*"))
    assert "login-username" in keys and "login-device" in keys, keys  # counted in Redis
    assert "susan" not in keys
    assert not limiter._storage_dead
