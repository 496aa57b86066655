"""Sign-in throttling: per client IP and per user name, checked before any password is hashed.

Only failed attempts count. Over a limit, the "too many attempts" page for every name,
known or not, and no password hashed. A browser that signed in to a name before keeps its
own allowance while strangers flood that name (device cookies), and other IPs never notice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.factories import PASSWORD, make_user
from support.reset_links import link_path, mint_token
from werkzeug.test import TestResponse

from shared.config import ConfigError, Settings
from shared.database import db
from shared.models import User
from web import create_app
from web.auth.device_cookies import COOKIE_NAME, COOKIE_PATH
from web.rate_limits import limiter

WRONG = "not the password"


def build(settings: Settings, **overrides: object) -> Flask:
    app = create_app(settings.with_overrides(**overrides))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    make_user(app)
    return app


def browser_at(app: Flask, remote_addr: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote_addr
    return client


def sign_in(client: FlaskClient, username: str = "susan", password: str = PASSWORD
            ) -> TestResponse:
    return client.post("/login", data={"username": username, "password": password})


def signed_in(response: TestResponse) -> bool:
    return response.status_code == 302 and response.headers["Location"] == "/index"


def refused(response: TestResponse) -> bool:
    return response.status_code == 302 and response.headers["Location"] == "/login"


def test_past_the_ip_limit_even_the_right_password_is_refused_without_hashing(
        settings: Settings, fake_broker, password_work: list[str]):
    app = build(settings, ratelimit_login_per_ip="5 per 5 minutes",
                ratelimit_login_per_username="100 per 5 minutes")
    attacker = browser_at(app, "10.2.1.1")
    password_work.clear()
    for n in range(5):
        assert refused(sign_in(attacker, "susan" if n % 2 else f"guess{n}", WRONG))
    assert password_work == ["verify"] * 5
    password_work.clear()
    response = sign_in(attacker)
    assert response.status_code == 429
    assert password_work == []  # refused before any hash
    assert b"Too many attempts" in response.data and b"try again" in response.data
    assert b'href="/reset_password_request"' in response.data
    assert response.headers["Cache-Control"] == "no-store"
    assert COOKIE_NAME not in response.headers.get("Set-Cookie", "")


def test_known_and_unknown_names_get_the_same_throttled_answer(
        settings: Settings, fake_broker, password_work: list[str]):
    app = build(settings, ratelimit_login_per_ip="3 per 5 minutes")
    attacker = browser_at(app, "10.2.2.1")
    for _ in range(3):
        sign_in(attacker, "nobody", WRONG)
    password_work.clear()
    # Fresh browsers at that IP: no flashed message left over from the attempts before.
    known = sign_in(browser_at(app, "10.2.2.1"), "susan", WRONG)
    unknown = sign_in(browser_at(app, "10.2.2.1"), "nobody", WRONG)
    assert password_work == []
    assert known.status_code == unknown.status_code == 429
    assert known.data == unknown.data
    def headers(response: TestResponse) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in response.headers.items() if k != "Date")

    assert headers(known) == headers(unknown)


def test_a_flooded_name_is_throttled_from_every_ip_known_or_not(
        settings: Settings, fake_broker, password_work: list[str]):
    app = build(settings, ratelimit_login_per_username="4 per 5 minutes")
    for name in ("susan", "nobody"):
        for n in range(4):  # a botnet: a new IP each time, the name as typed in any case
            assert refused(sign_in(browser_at(app, f"10.2.3.{n}"), name.upper() if n else name,
                                   WRONG))
    password_work.clear()
    answers = [sign_in(browser_at(app, "10.2.3.99"), name) for name in ("susan", "nobody")]
    assert [r.status_code for r in answers] == [429, 429]
    assert answers[0].data == answers[1].data
    assert password_work == []
    assert signed_in(sign_in(browser_at(app, "10.2.3.99"), "someone.else", WRONG)) is False


def test_a_browser_that_signed_in_before_still_can_while_its_name_is_attacked(
        settings: Settings, fake_broker):
    app = build(settings, ratelimit_login_per_username="3 per 5 minutes")
    own = browser_at(app, "10.2.4.1")
    assert signed_in(sign_in(own))
    device_cookie = own.get_cookie(COOKIE_NAME, path=COOKIE_PATH)
    assert device_cookie is not None and "susan" not in device_cookie.value
    own_next_day = browser_at(app, "10.2.4.1")  # the session is gone, the device cookie is not
    own_next_day.set_cookie(COOKIE_NAME, device_cookie.value, path=COOKIE_PATH)

    for n in range(6):
        sign_in(browser_at(app, f"10.2.5.{n}"), "susan", WRONG)
    assert sign_in(browser_at(app, "10.2.6.1")).status_code == 429  # a new browser must wait
    assert signed_in(sign_in(own_next_day))


def test_a_device_cookie_buys_no_extra_guesses(settings: Settings, fake_broker):
    """A stolen device cookie is worth as many guesses as the per-name limit, no more."""
    app = build(settings, ratelimit_login_per_username="3 per 5 minutes")
    browser = browser_at(app, "10.2.7.1")
    assert signed_in(sign_in(browser))
    cookie = browser.get_cookie(COOKIE_NAME, path=COOKIE_PATH)
    thief = browser_at(app, "10.2.7.2")
    thief.set_cookie(COOKIE_NAME, cookie.value, path=COOKIE_PATH)
    for _ in range(3):
        assert refused(sign_in(thief, "susan", WRONG))
    assert sign_in(thief, "susan", WRONG).status_code == 429
    # ...and it exempts nobody from the limit of another name.
    thief.set_cookie(COOKIE_NAME, cookie.value + "x", path=COOKIE_PATH)
    for _ in range(3):
        sign_in(thief, "other", WRONG)
    assert sign_in(browser_at(app, "10.2.7.3"), "other", WRONG).status_code == 429


def test_a_password_reset_lets_a_new_browser_past_a_flooded_name(settings: Settings,
                                                                 fake_broker):
    app = build(settings, ratelimit_login_per_username="3 per 5 minutes")
    for n in range(3):
        sign_in(browser_at(app, f"10.2.12.{n}"), "susan", WRONG)
    new_browser = browser_at(app, "10.2.13.1")
    assert sign_in(new_browser).status_code == 429
    with app.app_context():
        user_id = db.session.scalar(db.select(User.id).where(User.username == "susan"))
    new_password = "a brand new passphrase"
    response = new_browser.post(link_path(mint_token(app, user_id)),
                                data={"password": new_password, "password2": new_password})
    assert response.headers["Location"] == "/login"
    assert signed_in(sign_in(new_browser, "susan", new_password))
    assert sign_in(browser_at(app, "10.2.13.2"), "susan", new_password).status_code == 429


def test_one_ips_flood_leaves_other_ips_alone(settings: Settings, fake_broker):
    app = build(settings, ratelimit_login_per_ip="5 per 5 minutes",
                ratelimit_login_per_username="100 per 5 minutes")
    attacker = browser_at(app, "10.2.8.1")
    for n in range(20):
        sign_in(attacker, f"user{n}", WRONG)
    assert sign_in(attacker).status_code == 429
    assert refused(sign_in(browser_at(app, "10.2.8.2"), "susan", WRONG))
    assert signed_in(sign_in(browser_at(app, "10.2.8.3")))


def test_only_failed_attempts_count(settings: Settings, fake_broker):
    """An office behind one address signs in all day; only wrong passwords use the limit."""
    app = build(settings, ratelimit_login_per_ip="3 per 5 minutes",
                ratelimit_login_per_username="3 per 5 minutes")
    for _ in range(6):
        assert signed_in(sign_in(browser_at(app, "10.2.9.1")))
    for _ in range(3):
        assert browser_at(app, "10.2.9.1").get("/login").status_code == 200
    for _ in range(3):  # an empty form is refused by the form and costs no hash
        assert browser_at(app, "10.2.9.1").post("/login", data={}).status_code == 200
    assert signed_in(sign_in(browser_at(app, "10.2.9.1")))


def test_limiter_keys_never_hold_a_user_name(settings: Settings, fake_broker):
    app = build(settings)
    sign_in(browser_at(app, "10.2.10.1"), "susan", WRONG)
    keys = " ".join(limiter.storage.storage.keys())  # memory storage in unit tests
    assert "login-username" in keys and "login-ip" in keys
    assert "susan" not in keys.lower()


def test_sign_in_limits_come_from_the_environment(settings: Settings):
    from_env = Settings.from_env({"APP_ENV": "development",
                                  "RATELIMIT_LOGIN_PER_IP": "7 per minute",
                                  "RATELIMIT_LOGIN_PER_USERNAME": "2 per hour"})
    assert (from_env.ratelimit_login_per_ip, from_env.ratelimit_login_per_username) == (
        "7 per minute", "2 per hour")
    with pytest.raises(ConfigError, match="RATELIMIT_LOGIN_PER_USERNAME"):
        create_app(settings.with_overrides(ratelimit_login_per_username="a few"))


@pytest.fixture
def redis_down(settings: Settings, fake_broker) -> Iterator[Flask]:
    app = build(settings, ratelimit_storage_uri="redis://127.0.0.1:1/0",
                ratelimit_login_per_ip="3 per 5 minutes")
    yield app
    limiter._storage_dead = False  # the extension object outlives this app


def test_a_dead_redis_never_stops_a_sign_in_and_the_limit_still_holds(redis_down: Flask):
    assert signed_in(sign_in(browser_at(redis_down, "10.2.11.1")))
    attacker = browser_at(redis_down, "10.2.11.2")
    codes = [sign_in(attacker, "susan", WRONG).status_code for _ in range(4)]
    assert codes == [302, 302, 302, 429]  # counted in this process's memory meanwhile
