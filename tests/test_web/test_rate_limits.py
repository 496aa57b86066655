"""Rate limits: reset requests (per IP and per address), token submissions, registrations.

Over a request limit nothing changes for the visitor (see test_enumeration) and no email
goes out; over the token limit a clear "too many attempts" page. Limits come from the
environment, RATELIMIT_ENABLED=false turns them off, and a dead Redis never causes a 500.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.factories import make_user

from shared.config import ConfigError, Settings
from shared.database import db
from shared.models import DeliveryStatus, EmailDelivery
from web import create_app
from web.rate_limits import limiter
from worker.app import mail
from worker.tasks import send_password_reset


def build(settings: Settings, **overrides: object) -> Flask:
    app = create_app(settings.with_overrides(**overrides))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    return app


def client_at(app: Flask, remote_addr: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote_addr
    return client


def request_reset(app: Flask, email: str, remote_addr: str = "10.1.0.1") -> int:
    response = client_at(app, remote_addr).post("/reset_password_request", data={"email": email})
    assert response.status_code == 302
    assert response.headers["Location"] == "/reset_password_request/sent"
    return response.status_code


def statuses(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            db.select(EmailDelivery.status).order_by(EmailDelivery.created_at)))


def test_per_address_limit_counts_across_ips(settings: Settings, fake_broker):
    app = build(settings, ratelimit_reset_request_per_email="3 per 15 minutes")
    for n in range(5):
        request_reset(app, "Susan@Example.com " if n % 2 else "susan@example.com", f"10.1.1.{n}")
    assert statuses(app) == ["queued"] * 3 + ["throttled"] * 2
    request_reset(app, "someone.else@example.com", "10.1.1.9")
    assert statuses(app)[-1] == "queued"


def test_per_ip_limit_counts_across_addresses(settings: Settings, fake_broker):
    app = build(settings, ratelimit_reset_request_per_ip="4 per 15 minutes")
    for n in range(6):
        request_reset(app, f"person{n}@example.com", "10.1.2.1")
    assert statuses(app) == ["queued"] * 4 + ["throttled"] * 2
    request_reset(app, "person9@example.com", "10.1.2.2")
    assert statuses(app)[-1] == "queued"


def test_past_the_ceiling_one_ip_writes_nothing_and_gets_the_429_page(settings: Settings,
                                                                      fake_broker):
    """What bounds the outbox rows one address can keep: past the ceiling, no row at all."""
    app = build(settings, ratelimit_reset_request_per_ip="2 per 15 minutes",
                ratelimit_reset_request_ceiling_per_ip="4 per 15 minutes")
    for n in range(4):
        request_reset(app, f"person{n}@example.com", "10.1.3.1")
    flood = client_at(app, "10.1.3.1")
    for n in range(5):
        response = flood.post("/reset_password_request", data={"email": f"x{n}@example.com"})
        assert response.status_code == 429
        assert b"Too many attempts" in response.data
    assert statuses(app) == ["queued"] * 2 + ["throttled"] * 2
    assert flood.get("/reset_password_request").status_code == 200  # the form still shows
    request_reset(app, "neighbour@example.com", "10.1.3.2")
    assert statuses(app)[-1] == "queued"


def test_every_limit_counts_every_request_breached_or_not(settings: Settings, fake_broker):
    """A throttled request still counts against the other limit: the same limiter work (and
    Redis round trips) for every request, so being throttled does not show in the timing."""
    app = build(settings, ratelimit_reset_request_per_ip="3 per 15 minutes",
                ratelimit_reset_request_per_email="1 per 15 minutes")
    for _ in range(3):
        request_reset(app, "susan@example.com", "10.1.8.1")  # over the address limit after 1
    request_reset(app, "other@example.com", "10.1.8.1")  # the IP's 4th request
    assert statuses(app) == ["queued"] + ["throttled"] * 3


def test_over_the_limit_no_email_goes_out(settings: Settings, fake_broker, worker_app: Flask):
    """A flood against one address sends as many emails as the limit allows, no more."""
    app = build(settings, ratelimit_reset_request_per_email="3 per 15 minutes")
    make_user(app)
    for n in range(8):
        request_reset(app, "susan@example.com", f"10.1.3.{n}")
    with app.app_context():
        ids = list(db.session.scalars(db.select(EmailDelivery.id)))
    with worker_app.app_context(), mail.record_messages() as outbox:
        outcomes = [send_password_reset.run(delivery_id) for delivery_id in ids]
    assert len(outbox) == 3
    assert sorted(outcomes) == sorted(["sent"] * 3 + [DeliveryStatus.THROTTLED.value] * 5)


def test_token_submissions_are_limited_per_ip_with_a_clear_page(settings: Settings,
                                                                 fake_broker):
    app = build(settings, ratelimit_reset_token_per_ip="5 per 15 minutes")
    client = client_at(app, "10.1.4.1")
    for _ in range(3):
        assert client.get("/reset_password/not-a-token").status_code == 400
    for _ in range(2):
        assert client.post("/reset_password", data={"password": "x"}).status_code == 400
    for _ in range(3):
        assert client.get("/reset_password").status_code == 400  # showing the form is free
    refused = client.post("/reset_password/not-a-token", data={})
    assert refused.status_code == 429
    assert b"Too Many Attempts" in refused.data
    assert b"Please wait a few minutes" in refused.data
    assert refused.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in refused.headers
    assert client_at(app, "10.1.4.2").get("/reset_password/not-a-token").status_code == 400


def test_registrations_are_limited_per_ip(settings: Settings, fake_broker):
    app = build(settings, ratelimit_register_per_ip="2 per hour")
    client = client_at(app, "10.1.5.1")
    for _ in range(2):
        assert client.post("/register", data={"username": "x"}).status_code == 200
    assert client.post("/register", data={"username": "x"}).status_code == 429
    assert client.get("/register").status_code == 200  # the page itself stays reachable


def test_limits_can_be_switched_off(settings: Settings, fake_broker):
    app = build(settings, ratelimit_enabled=False, ratelimit_reset_request_per_email="1 per hour",
                ratelimit_reset_token_per_ip="1 per hour")
    for _ in range(12):
        request_reset(app, "susan@example.com", "10.1.6.1")
    assert set(statuses(app)) == {"queued"}
    client = client_at(app, "10.1.6.1")
    assert {client.get("/reset_password/x").status_code for _ in range(5)} == {400}


def test_limits_come_from_the_environment():
    settings = Settings.from_env({
        "APP_ENV": "development",
        "RATELIMIT_ENABLED": "false",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/3",
        "RATELIMIT_RESET_REQUEST_PER_IP": "7 per minute",
        "RATELIMIT_RESET_REQUEST_PER_EMAIL": "2 per hour",
        "RATELIMIT_RESET_TOKEN_PER_IP": "9 per 10 minutes",
        "RATELIMIT_REGISTER_PER_IP": "4 per day",
    })
    assert not settings.ratelimit_enabled
    assert settings.flask_config()["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/3"
    assert (settings.ratelimit_reset_request_per_ip, settings.ratelimit_reset_request_per_email,
            settings.ratelimit_reset_token_per_ip, settings.ratelimit_register_per_ip) == (
        "7 per minute", "2 per hour", "9 per 10 minutes", "4 per day")


def test_limits_default_to_redis_at_the_broker_url():
    settings = Settings.from_env({"APP_ENV": "development", "REDIS_URL": "redis://cache:6379/2"})
    assert settings.ratelimit_enabled
    assert settings.flask_config()["RATELIMIT_STORAGE_URI"] == "redis://cache:6379/2"


def test_a_malformed_limit_stops_the_app_at_start(settings: Settings):
    with pytest.raises(ConfigError, match="RATELIMIT_RESET_TOKEN_PER_IP"):
        create_app(settings.with_overrides(ratelimit_reset_token_per_ip="lots"))


@pytest.fixture
def redis_down(settings: Settings, fake_broker) -> Iterator[Flask]:
    app = build(settings, ratelimit_storage_uri="redis://127.0.0.1:1/0",
                ratelimit_reset_request_per_email="2 per 15 minutes",
                ratelimit_reset_token_per_ip="3 per 15 minutes")
    yield app
    # The extension object outlives this app: the next app starts with Redis assumed alive.
    limiter._storage_dead = False


def test_a_dead_redis_never_causes_a_500_and_limits_still_hold(redis_down: Flask):
    for n in range(4):
        request_reset(redis_down, "susan@example.com", f"10.1.7.{n}")
    assert statuses(redis_down) == ["queued"] * 2 + ["throttled"] * 2  # in-memory fallback
    client = client_at(redis_down, "10.1.7.9")
    codes = [client.get("/reset_password/x").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


def test_limiter_keys_never_hold_an_address(settings: Settings, fake_broker):
    app = build(settings)
    request_reset(app, "susan@example.com")
    keys = " ".join(limiter.storage.storage.keys())  # memory storage in unit tests
    assert "reset-request-email" in keys
    assert "susan" not in keys and "example.com" not in keys
