"""Nobody learns whether an address has an account: not from the page, the flash, the status,
the headers or the session, whether the address is known, unknown, inactive or rate-limited.

Timing is measured by `bench/timing_parity.py`, not here (speed is never a timed assertion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.factories import make_user

from shared.config import Settings
from shared.database import db
from shared.models import DeliveryStatus, EmailDelivery, User
from web import create_app

CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
BASE = "https://microblog.example.test"
FIELD_VALUE = re.compile(rb'value="[^"]*"')


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    session: dict
    cookie_attributes: list[str]
    page: bytes


@pytest.fixture
def site(settings: Settings, fake_broker) -> Flask:
    """The app as deployed (CSRF on), over HTTPS, with the default limits."""
    app = create_app(settings.with_overrides(
        ratelimit_reset_request_per_ip="10 per 15 minutes",
        ratelimit_reset_request_per_email="3 per 15 minutes",
    ))
    with app.app_context():
        db.create_all()
    make_user(app)
    inactive = make_user(app, username="ivan", email="ivan@example.com")
    with app.app_context():
        db.session.get(User, inactive.id).active = False
        db.session.commit()
    return app


def ask(app: Flask, email: str, remote_addr: str) -> Answer:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote_addr
    form = client.get(f"{BASE}/reset_password_request")
    token = CSRF.search(form.data).group(1).decode()
    response = client.post(f"{BASE}/reset_password_request",
                           data={"email": email, "csrf_token": token},
                           headers={"Referer": f"{BASE}/reset_password_request"})
    set_cookie = response.headers.get("Set-Cookie", "")
    name_value, *attributes = [part.strip() for part in set_cookie.split(";")]
    value = name_value.partition("=")[2]
    session = app.session_interface.get_signing_serializer(app).loads(value)
    headers = {k: v for k, v in response.headers.items() if k != "Set-Cookie"}
    page = client.get(BASE + response.headers["Location"]).data
    return Answer(response.status_code, headers, session, sorted(attributes), page)


def comparable(answer: Answer) -> tuple:
    session_shape = (sorted(answer.session), answer.session.get("_flashes"))
    return (answer.status, answer.headers, session_shape, answer.cookie_attributes, answer.page)


def test_known_unknown_inactive_and_throttled_are_answered_identically(site: Flask):
    known = ask(site, "susan@example.com", "10.0.0.1")
    unknown = ask(site, "nobody@example.com", "10.0.0.2")
    inactive = ask(site, "ivan@example.com", "10.0.0.3")
    for n in range(3):  # use up the per-address limit from other addresses
        ask(site, "susan@example.com", f"10.0.1.{n}")
    throttled_address = ask(site, "susan@example.com", "10.0.0.4")
    for n in range(10):  # use up one IP's limit with other addresses
        ask(site, f"someone{n}@example.com", "10.0.0.5")
    throttled_ip = ask(site, "stranger@example.com", "10.0.0.5")

    assert known.status == 302 and known.headers["Location"] == "/reset_password_request/sent"
    assert b"Check your email for the instructions" in known.page
    assert known.cookie_attributes == ["HttpOnly", "Path=/", "SameSite=Lax"]
    for other in (unknown, inactive, throttled_address, throttled_ip):
        assert comparable(other) == comparable(known)

    with site.app_context():
        statuses = {row.email: row.status for row in db.session.scalars(
            db.select(EmailDelivery).order_by(EmailDelivery.created_at))}
    # Same work every time; only the row's status says that the last ones were throttled.
    assert statuses["nobody@example.com"] == DeliveryStatus.QUEUED
    assert statuses["susan@example.com"] == DeliveryStatus.THROTTLED
    assert statuses["stranger@example.com"] == DeliveryStatus.THROTTLED


def test_every_answer_does_the_same_work(site: Flask, fake_broker):
    for n, email in enumerate(["susan@example.com", "nobody@example.com", "ivan@example.com"]):
        ask(site, email, f"10.0.2.{n}")
    for n in range(5):
        ask(site, "susan@example.com", f"10.0.3.{n}")
    with site.app_context():
        rows = db.session.scalar(db.select(db.func.count()).select_from(EmailDelivery))
    assert rows == 8
    assert fake_broker.llen("email") == 8  # throttled rows are published too, then skipped


def test_registration_names_neither_the_taken_username_nor_the_taken_email(
        client: FlaskClient, user: User):
    pages = []
    for username, email in [("susan", "fresh@example.com"), ("fresh", "susan@example.com"),
                            ("susan", "susan@example.com")]:
        response = client.post("/register", data={
            "username": username, "email": email,
            "password": "a long passphrase", "password2": "a long passphrase"})
        assert response.status_code == 200
        pages.append(FIELD_VALUE.sub(b'value=""', response.data))  # what was typed in
    assert b"That username or email cannot be used" in pages[0]
    assert pages[0] == pages[1] == pages[2]


def test_registration_hashes_the_password_even_when_refused(client: FlaskClient, user: User,
                                                            password_work: list[str]):
    """A refusal does the same expensive work as a success, so it is not faster."""
    client.post("/register", data={"username": "other", "email": "susan@example.com",
                                   "password": "a long passphrase",
                                   "password2": "a long passphrase"})
    assert password_work == ["hash"]


def test_an_unknown_username_costs_a_password_check_too(client: FlaskClient, user: User,
                                                        password_work: list[str]):
    client.post("/login", data={"username": "susan", "password": "a wrong guess"})
    known = list(password_work)
    password_work.clear()
    response = client.post("/login", data={"username": "nobody", "password": "a guess here"})
    assert response.headers["Location"] == "/login"
    assert known == password_work == ["verify"]


def test_a_registration_racing_another_gets_the_same_refusal(client: FlaskClient, app: Flask,
                                                             monkeypatch):
    """The address is taken between the check and the commit: a refusal, not a 500."""
    import web.auth.routes as routes

    real_scalar = routes.db.session.scalar

    def check_then_race(*args, **kwargs):
        result = real_scalar(*args, **kwargs)
        make_user(app, username="racer", email="race@example.com")
        return result

    monkeypatch.setattr(routes.db.session, "scalar", check_then_race)
    response = client.post("/register", data={
        "username": "other", "email": "race@example.com",
        "password": "a long passphrase", "password2": "a long passphrase"})
    assert response.status_code == 200
    assert b"That username or email cannot be used" in response.data
