"""After a reset every other session and remember-me cookie is dead, and nobody is signed in."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.factories import PASSWORD
from support.reset_links import link_path, mint_token

from shared.database import db
from shared.models import User
from web.extensions import parse_session_id

NEW = {"password": "a brand new passphrase", "password2": "a brand new passphrase"}
PROFILE = "/user/susan"


def signed_in(app: Flask, remember: bool = False) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"username": "susan", "password": PASSWORD,
                                           "remember_me": "y" if remember else ""})
    assert response.headers["Location"] == "/index"
    assert client.get(PROFILE).status_code == 200
    return client


def remember_cookie_only(app: Flask) -> FlaskClient:
    """A browser that was closed: its session cookie is gone, the remember-me cookie is not."""
    client = signed_in(app, remember=True)
    assert client.get_cookie("remember_token") is not None
    client.delete_cookie("session")
    assert client.get(PROFILE).status_code == 200  # the remember-me cookie signs it back in
    client.delete_cookie("session")
    return client


def reset_by_link(app: Flask) -> FlaskClient:
    client = app.test_client()
    user_id = 1
    response = client.post(link_path(mint_token(app, user_id)), data=NEW)
    assert response.headers["Location"] == "/login"
    return client


def test_reset_signs_out_every_other_session(app: Flask, user: User):
    laptop, phone = signed_in(app), signed_in(app)
    reset_by_link(app)
    for client in (laptop, phone):
        response = client.get(PROFILE)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_reset_kills_remember_me_cookies(app: Flask, user: User):
    closed_browser = remember_cookie_only(app)
    reset_by_link(app)
    response = closed_browser.get(PROFILE)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_no_automatic_sign_in_after_a_reset(app: Flask, user: User):
    client = reset_by_link(app)
    page = client.get("/login")
    assert b"Your password has been reset." in page.data
    assert client.get(PROFILE).status_code == 302
    assert client.get_cookie("remember_token") is None


def test_signing_in_again_with_the_new_password_works(app: Flask, user: User):
    reset_by_link(app)
    client = app.test_client()
    response = client.post("/login", data={"username": "susan", "password": NEW["password"]})
    assert response.headers["Location"] == "/index"
    assert client.get(PROFILE).status_code == 200


def test_session_holds_the_version_with_the_id(app: Flask, user: User):
    with app.app_context():
        account = db.session.get(User, user.id)
        assert account.get_id() == f"{user.id}:0"


def test_an_inactive_account_cannot_sign_in(app: Flask, user: User):
    client = signed_in(app)
    with app.app_context():
        db.session.get(User, user.id).active = False
        db.session.commit()
    assert client.get(PROFILE).status_code == 302  # its live session ends too
    fresh = app.test_client()
    response = fresh.post("/login", data={"username": "susan", "password": PASSWORD})
    assert response.headers["Location"] == "/login"
    assert b"Invalid username or password" in fresh.get("/login").data


@pytest.mark.parametrize("value", ["1", "1:", ":0", "a:0", "1:a", "1:0:0", "²:0", "1:²",
                                   "0:0", "99999999999999999999:0", "", "1:-1"])
def test_malformed_session_ids_load_nobody(value: str):
    assert parse_session_id(value) is None


def test_well_formed_session_id_parses():
    assert parse_session_id("12:3") == (12, 3)
