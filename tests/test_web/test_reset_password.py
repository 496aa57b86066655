"""Following a reset link: a live link sets the password once; anything else gets a clear page."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from support.factories import PASSWORD

from shared.clock import utcnow
from shared.models import User
from shared.tokens import issue_reset_token

NEW_PASSWORD = "a brand new passphrase"


def token_for(app: Flask, user: User, **kwargs) -> str:
    return issue_reset_token(app.config["SECRET_KEY"], user.id, user.password_hash,
                             timedelta(minutes=10), **kwargs)


def test_link_sets_a_new_password_once(client: FlaskClient, app: Flask, user: User, auth):
    url = f"/reset_password/{token_for(app, user)}"
    assert b"Set a New Password" in client.get(url).data
    response = client.post(url, data={"password": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert b"Your password has been reset." in client.get("/login").data

    assert auth.login("susan", PASSWORD).headers["Location"] == "/login"  # old one refused
    assert auth.login("susan", NEW_PASSWORD).headers["Location"] == "/index"
    auth.logout()

    again = client.get(url)
    assert again.status_code == 400 and b"This link is not valid" in again.data


def test_expired_link_says_so_and_offers_a_new_one(client: FlaskClient, app: Flask, user: User):
    token = token_for(app, user, now=utcnow() - timedelta(minutes=11))
    response = client.get(f"/reset_password/{token}")
    assert response.status_code == 400
    assert b"This link has expired" in response.data
    assert b'href="/reset_password_request"' in response.data


def test_garbage_link_gets_a_clear_page(client: FlaskClient):
    response = client.get("/reset_password/not-a-token")
    assert response.status_code == 400
    assert b"This link is not valid" in response.data
    assert b"Request a new link" in response.data


def test_link_for_a_deleted_account_is_not_valid(client: FlaskClient, app: Flask, user: User):
    token = issue_reset_token(app.config["SECRET_KEY"], 999, "x", timedelta(minutes=10))
    assert client.get(f"/reset_password/{token}").status_code == 400


def test_mismatched_passwords_keep_the_form(client: FlaskClient, app: Flask, user: User):
    url = f"/reset_password/{token_for(app, user)}"
    response = client.post(url, data={"password": NEW_PASSWORD, "password2": "different one"})
    assert response.status_code == 200
    assert b"Passwords must match" in response.data


def test_a_post_with_a_bad_token_changes_nothing(client: FlaskClient, user: User, auth):
    response = client.post("/reset_password/garbage",
                           data={"password": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 400
    assert auth.login("susan", PASSWORD).headers["Location"] == "/index"
