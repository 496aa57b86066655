"""A visitor registers, signs in, sees a profile and signs out."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from support.factories import make_user

from shared.database import db
from shared.models import User


def test_register_then_login_then_logout(client: FlaskClient, app: Flask, auth):
    response = client.post("/register", data={
        "username": "john", "email": "John@Example.com",
        "password": "a long passphrase", "password2": "a long passphrase",
    })
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    with app.app_context():
        assert db.session.scalar(db.select(User.email).where(User.username == "john")) == (
            "john@example.com"
        )
    response = auth.login("john", "a long passphrase")
    assert response.status_code == 302
    assert b"Hi, john!" in client.get("/index").data
    assert b"Member since" in client.get("/user/john").data
    auth.logout()
    assert client.get("/user/john").status_code == 302


def test_wrong_password_is_refused(client: FlaskClient, user: User, auth):
    response = auth.login("susan", "wrong password")
    assert response.headers["Location"] == "/login"
    assert b"Invalid username or password" in client.get("/login").data


def test_register_refuses_a_taken_email_without_saying_which_field(client: FlaskClient,
                                                                   user: User):
    response = client.post("/register", data={
        "username": "other", "email": "susan@example.com",
        "password": "a long passphrase", "password2": "a long passphrase",
    })
    assert response.status_code == 200
    assert b"That username or email cannot be used" in response.data


def test_register_shows_field_errors(client: FlaskClient):
    response = client.post("/register", data={
        "username": "x", "email": "not-an-email", "password": "short", "password2": "other",
    })
    assert response.status_code == 200
    assert b"Invalid email address" in response.data
    assert b"Passwords must match" in response.data


def test_login_redirect_never_leaves_the_site(client: FlaskClient, user: User):
    response = client.post("/login?next=https://evil.example/", data={
        "username": "susan", "password": "correct horse battery"})
    assert response.headers["Location"] == "/index"


def test_login_follows_a_local_next(client: FlaskClient, user: User):
    response = client.post("/login?next=/user/susan", data={
        "username": "susan", "password": "correct horse battery"})
    assert response.headers["Location"] == "/user/susan"


def test_login_page_offers_password_reset(client: FlaskClient):
    page = client.get("/login").data
    assert b"Forgot your password?" in page and b'href="/reset_password_request"' in page


def test_unknown_profile_is_404(client: FlaskClient, app: Flask, auth):
    make_user(app)
    auth.login()
    assert client.get("/user/nobody").status_code == 404
