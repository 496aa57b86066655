"""Following a reset link: a live link sets the password once; anything else gets a clear page.

Each way a link dies has its test: used, password changed, newer link issued, expired,
tampered, wrong purpose, `alg: none`, account gone or inactive. Rotated keys keep links alive.
"""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.factories import PASSWORD, make_user
from support.reset_links import link_path, mint_token

from shared.clock import utcnow
from shared.config import Settings
from shared.database import db
from shared.models import User
from shared.tokens import _signing_key, read_reset_token
from web import create_app
from web.reset_links import open_reset_link, spend_reset_link

NEW_PASSWORD = "a brand new passphrase"
NEW = {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}


def password_hash_of(app: Flask, user_id: int) -> str:
    with app.app_context():
        return db.session.get(User, user_id).password_hash


def assert_dead(client: FlaskClient, token: str, expired: bool = False) -> None:
    response = client.get(link_path(token))
    assert response.status_code == 400
    heading = b"This link has expired" if expired else b"This link is not valid"
    assert heading in response.data
    assert b'href="/reset_password_request"' in response.data
    post = client.post(link_path(token), data=NEW)
    assert post.status_code == 400


def test_link_moves_the_token_out_of_the_url(client: FlaskClient, app: Flask, user: User):
    token = mint_token(app, user.id)
    response = client.get(link_path(token))
    assert response.status_code == 302
    assert response.headers["Location"] == "/reset_password"
    form = client.get("/reset_password")
    assert form.status_code == 200 and b"Set a New Password" in form.data
    assert token.encode() not in form.data


def test_link_sets_a_new_password_once(client: FlaskClient, app: Flask, user: User, auth):
    token = mint_token(app, user.id)
    client.get(link_path(token))
    response = client.post("/reset_password", data=NEW)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert b"Your password has been reset." in client.get("/login").data

    assert auth.login("susan", PASSWORD).headers["Location"] == "/login"  # old one refused
    assert auth.login("susan", NEW_PASSWORD).headers["Location"] == "/index"
    auth.logout()
    assert_dead(client, token)


def test_the_form_url_forgets_the_link_once_used(client: FlaskClient, app: Flask, user: User):
    client.get(link_path(mint_token(app, user.id)))
    client.post("/reset_password", data=NEW)
    again = client.post("/reset_password", data={"password": "yet another passphrase",
                                                 "password2": "yet another passphrase"})
    assert again.status_code == 400
    assert client.get("/reset_password").status_code == 400


def test_scripts_can_post_to_the_link_itself_once(client: FlaskClient, app: Flask, user: User):
    token = mint_token(app, user.id)
    first = client.post(link_path(token), data=NEW)
    assert first.status_code == 302 and first.headers["Location"] == "/login"
    second = client.post(link_path(token), data={"password": "an attacker's passphrase",
                                                 "password2": "an attacker's passphrase"})
    assert second.status_code == 400
    with app.app_context():
        assert db.session.get(User, user.id).check_password(NEW_PASSWORD)


def test_reuse_is_impossible_even_in_a_race(client: FlaskClient, app: Flask, user: User):
    """Two requests that both opened the link before either spent it: only one wins."""
    token = mint_token(app, user.id)
    with app.test_request_context():
        first_user, first_claims = open_reset_link(token)
        second_user, second_claims = open_reset_link(token)
        assert spend_reset_link(first_user, first_claims, "the first passphrase")
        assert not spend_reset_link(second_user, second_claims, "the second passphrase")
        db.session.expire_all()
        current = db.session.get(User, user.id)
        assert current.check_password("the first passphrase")
        assert not current.check_password("the second passphrase")


def test_link_dies_when_the_password_changes_another_way(client: FlaskClient, app: Flask,
                                                         user: User):
    token = mint_token(app, user.id)
    with app.app_context():
        account = db.session.get(User, user.id)
        account.set_password("changed elsewhere entirely")
        db.session.commit()
    assert_dead(client, token)


def test_newest_link_wins(client: FlaskClient, app: Flask, user: User):
    older = mint_token(app, user.id)
    newer = mint_token(app, user.id)
    assert_dead(client, older)
    assert client.post(link_path(newer), data=NEW).headers["Location"] == "/login"


def test_a_link_that_was_opened_dies_when_a_newer_one_is_minted(client: FlaskClient,
                                                                app: Flask, user: User):
    client.get(link_path(mint_token(app, user.id)))
    assert client.get("/reset_password").status_code == 200
    mint_token(app, user.id)
    assert client.post("/reset_password", data=NEW).status_code == 400


def test_expired_link_says_so_and_offers_a_new_one(client: FlaskClient, app: Flask, user: User):
    token = mint_token(app, user.id, now=utcnow() - timedelta(minutes=11))
    assert_dead(client, token, expired=True)


def test_link_expires_after_ten_minutes_by_default(client: FlaskClient, app: Flask,
                                                   user: User):
    assert app.config["SETTINGS"].reset_token_minutes == 10
    alive = mint_token(app, user.id, now=utcnow() - timedelta(minutes=9))
    assert client.get(link_path(alive)).status_code == 302


def test_tampered_link_is_not_valid(client: FlaskClient, app: Flask, user: User):
    token = mint_token(app, user.id)
    head, _, signature = token.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_dead(client, f"{head}.{flipped}")
    assert_dead(client, token[:-3])


def _claims_for(app: Flask, user_id: int) -> dict:
    with app.app_context():
        generation = User.bump_reset_generation(user_id)
        db.session.commit()
    token = mint_token(app, user_id)
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["gen"] = generation + 1
    return claims


def test_link_for_another_purpose_is_not_valid(client: FlaskClient, app: Flask, user: User):
    claims = {**_claims_for(app, user.id), "purpose": "confirm_email"}
    token = jwt.encode(claims, _signing_key(app.config["SECRET_KEY"]), algorithm="HS256")
    assert_dead(client, token)


def test_alg_none_link_is_not_valid(client: FlaskClient, app: Flask, user: User):
    claims = _claims_for(app, user.id)
    token = jwt.encode(claims, None, algorithm="none")
    assert_dead(client, token)


def test_garbage_link_gets_a_clear_page(client: FlaskClient):
    response = client.get("/reset_password/not-a-token")
    assert response.status_code == 400
    assert b"This link is not valid" in response.data
    assert b"Request a new link" in response.data


def test_link_for_a_deleted_account_is_not_valid(client: FlaskClient, app: Flask, user: User):
    token = mint_token(app, user.id)
    with app.app_context():
        db.session.delete(db.session.get(User, user.id))
        db.session.commit()
    assert_dead(client, token)


def test_link_for_an_inactive_account_is_not_valid(client: FlaskClient, app: Flask, user: User):
    token = mint_token(app, user.id)
    with app.app_context():
        db.session.get(User, user.id).active = False
        db.session.commit()
    assert_dead(client, token)


def test_form_without_a_link_in_the_session_is_refused(client: FlaskClient):
    assert client.get("/reset_password").status_code == 400
    assert client.post("/reset_password", data=NEW).status_code == 400


def test_mismatched_passwords_keep_the_form(client: FlaskClient, app: Flask, user: User):
    client.get(link_path(mint_token(app, user.id)))
    response = client.post("/reset_password",
                           data={"password": NEW_PASSWORD, "password2": "different one"})
    assert response.status_code == 200
    assert b"Passwords must match" in response.data
    assert client.post("/reset_password", data=NEW).status_code == 302  # link still live


def test_a_post_with_a_bad_token_changes_nothing(client: FlaskClient, app: Flask, user: User,
                                                 auth):
    before = password_hash_of(app, user.id)
    response = client.post("/reset_password/garbage", data=NEW)
    assert response.status_code == 400
    assert password_hash_of(app, user.id) == before
    assert auth.login("susan", PASSWORD).headers["Location"] == "/index"


def test_signed_in_visitor_is_sent_home_and_the_link_is_not_spent(client: FlaskClient,
                                                                  app: Flask, user: User, auth):
    token = mint_token(app, user.id)
    auth.login()
    assert client.get(link_path(token)).headers["Location"] == "/index"
    auth.logout()
    assert client.get(link_path(token)).status_code == 302


OLD_KEY = "the-key-before-the-rotation-0123456789abcdef"
NEW_KEY = "the-key-after-the-rotation-0123456789abcdef"


@pytest.fixture
def rotated_app(settings: Settings, fake_broker):
    app = create_app(settings.with_overrides(secret_key=NEW_KEY, secret_key_fallbacks=(OLD_KEY,)))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_links_minted_before_a_key_rotation_still_work(rotated_app: Flask):
    user = make_user(rotated_app)
    token = mint_token(rotated_app, user.id, secret_key=OLD_KEY)
    with rotated_app.app_context():
        assert read_reset_token(OLD_KEY, token).user_id == user.id
    client = rotated_app.test_client()
    assert client.get(link_path(token)).status_code == 302
    assert client.post("/reset_password", data=NEW).headers["Location"] == "/login"
    assert client.get(link_path(token)).status_code == 400  # and still only once


def test_links_under_a_retired_key_are_refused(settings: Settings, fake_broker):
    app = create_app(settings.with_overrides(secret_key=NEW_KEY))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    user = make_user(app)
    token = mint_token(app, user.id, secret_key=OLD_KEY)
    assert app.test_client().get(link_path(token)).status_code == 400
