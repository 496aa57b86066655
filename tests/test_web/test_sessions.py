"""Sessions that end: signing out (a POST) ends this browser's session and remember-me cookie
on the server, "sign out of all devices" and a password reset end every one of them, and
the session is emptied at sign-in and at sign-out, reset link and all.

The test app's broker is unreachable (redis://127.0.0.1:1): none of this needs Redis.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from support.factories import PASSWORD, make_user
from support.forms import submit
from support.reset_links import link_path, mint_token

from shared.clock import utcnow
from shared.database import db
from shared.models import LoginSession, User
from web.login_sessions import load_user, purge_ended_sign_ins, summarize_user_agent

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


def test_the_session_holds_a_sign_in_token_not_the_account_id(app: Flask, user: User):
    client = signed_in(app)
    token = session_of(client)["_user_id"]
    assert len(token) == 43 and token != str(user.id)
    with app.app_context():
        login = db.session.get(LoginSession, hashlib.sha256(token.encode()).hexdigest())
        assert login is not None and login.user_id == user.id  # the table holds its hash only
        assert db.session.get(LoginSession, token) is None


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


def session_of(client: FlaskClient) -> dict[str, object]:
    with client.session_transaction() as session:
        return dict(session)


def signed_out(client: FlaskClient) -> bool:
    response = client.get(PROFILE)
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def replay(app: Flask, client: FlaskClient, *names: str) -> FlaskClient:
    """Another browser holding copies of `client`'s cookies called `names`."""
    thief = app.test_client()
    for name in names:
        cookie = client.get_cookie(name)
        assert cookie is not None, name
        thief.set_cookie(name, cookie.value, domain=cookie.domain, path=cookie.path)
    return thief


def sign_in_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(LoginSession))


# Signing out is a POST with the CSRF token.

def test_a_get_of_logout_signs_nobody_out(app: Flask, user: User):
    client = signed_in(app, remember=True)
    page = client.get("/logout")
    assert page.status_code == 200
    assert b'<form class="post-button" method="post" action="/logout">' in page.data
    assert b"Sign out?" in page.data
    assert client.get(PROFILE).status_code == 200
    assert sign_in_count(app) == 1


def test_an_anonymous_get_of_logout_goes_home(client: FlaskClient):
    response = client.get("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/index"


def test_a_logout_post_without_the_csrf_token_is_refused(csrf_app: Flask, user: User):
    client = csrf_app.test_client()
    response = submit(client, "/login", {"username": "susan", "password": PASSWORD})
    assert response.headers["Location"] == "/index"

    forged = client.post("/logout", headers={"Referer": "https://evil.example/"})
    assert forged.status_code == 400 and b"Form Expired" in forged.data
    assert client.get(PROFILE).status_code == 200
    everywhere = client.post("/logout/everywhere")
    assert everywhere.status_code == 400
    assert client.get(PROFILE).status_code == 200

    response = submit(client, "/logout", {})  # the button, with its token
    assert response.status_code == 302
    assert signed_out(client)


def test_every_signed_in_page_carries_the_sign_out_button(app: Flask, user: User):
    client = signed_in(app)
    for path in ("/index", PROFILE):
        page = client.get(path).data.decode()
        nav = page[page.index("<nav"):page.index("</nav>")]
        assert 'action="/logout"' in nav and ">Sign out</button>" in nav
        assert 'href="/logout"' not in nav


# Signing out ends this browser's sign-in on the server, and only this one's.

def test_a_copied_session_cookie_is_dead_after_sign_out(app: Flask, user: User):
    client = signed_in(app)
    copy = replay(app, client, "session")
    assert copy.get(PROFILE).status_code == 200  # the copy works while the sign-in lives
    client.post("/logout")
    assert signed_out(client)
    assert signed_out(copy)


def test_a_copied_remember_me_cookie_is_dead_after_sign_out(app: Flask, user: User):
    client = signed_in(app, remember=True)
    remembered = replay(app, client, "remember_token")
    session_copy = replay(app, client, "session")
    response = client.post("/logout")
    assert "remember_token=;" in response.headers.get("Set-Cookie", "")  # deleted here too
    assert signed_out(remembered)
    assert signed_out(session_copy)
    assert sign_in_count(app) == 0


def test_other_browsers_stay_signed_in_after_a_sign_out(app: Flask, user: User):
    laptop, phone = signed_in(app), signed_in(app)
    closed_browser = remember_cookie_only(app)
    laptop.post("/logout")
    assert signed_out(laptop)
    assert phone.get(PROFILE).status_code == 200
    assert closed_browser.get(PROFILE).status_code == 200
    assert sign_in_count(app) == 2


def test_signing_out_everywhere_ends_every_session_and_remember_me_cookie(app: Flask,
                                                                         user: User):
    laptop, phone = signed_in(app), signed_in(app)
    closed_browser = remember_cookie_only(app)
    laptop_copy = replay(app, laptop, "session")

    response = laptop.post("/logout/everywhere")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert b"You are signed out on every device." in laptop.get("/login").data
    for client in (laptop, laptop_copy, phone, closed_browser):
        assert signed_out(client)
    assert sign_in_count(app) == 0
    with app.app_context():
        assert db.session.get(User, user.id).session_version == 1

    fresh = signed_in(app)  # and signing in again works as before
    assert fresh.get(PROFILE).status_code == 200


def test_signing_out_everywhere_needs_a_signed_in_browser(client: FlaskClient, user: User):
    response = client.post("/logout/everywhere")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_signing_out_everywhere_leaves_other_accounts_alone(app: Flask, user: User):
    make_user(app, username="bob", email="bob@example.com")
    bob = app.test_client()
    bob.post("/login", data={"username": "bob", "password": PASSWORD})
    signed_in(app).post("/logout/everywhere")
    assert bob.get("/user/bob").status_code == 200


def test_a_sign_in_recorded_during_sign_out_everywhere_does_not_count(app: Flask, user: User):
    """Its row carries the session version it read; the bump makes it stale at once."""
    client = signed_in(app)
    with app.app_context():  # "sign out everywhere" committed between read and insert
        db.session.execute(update(User).values(session_version=User.session_version + 1))
        db.session.commit()
    assert signed_out(client)


def test_an_expired_sign_in_loads_nobody_and_is_purged(app: Flask, user: User):
    client = signed_in(app, remember=True)
    with app.app_context():
        db.session.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert signed_out(client)
    with app.app_context():
        assert purge_ended_sign_ins() == 1
    assert sign_in_count(app) == 0


def test_purge_keeps_live_sign_ins_and_drops_ones_a_version_bump_ended(app: Flask, user: User):
    signed_in(app)
    with app.app_context():
        assert purge_ended_sign_ins() == 0
        db.session.execute(update(User).values(session_version=User.session_version + 1))
        db.session.commit()
        assert purge_ended_sign_ins() == 1


def test_sign_in_and_remember_me_last_the_configured_lifetime(settings, fake_broker):
    from web import create_app

    app = create_app(settings.with_overrides(session_lifetime_hours=2))
    assert app.config["REMEMBER_COOKIE_DURATION"] == timedelta(hours=2)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
        make_user(app)
    before = utcnow()
    signed_in(app)
    with app.app_context():
        login = db.session.scalars(select(LoginSession)).one()
        assert before + timedelta(hours=2) <= login.expires_at <= utcnow() + timedelta(hours=2)
        db.session.remove()
        db.engine.dispose()


def test_the_last_seen_date_moves_at_most_every_few_minutes(app: Flask, user: User):
    client = signed_in(app)
    long_ago = utcnow() - timedelta(hours=1)
    with app.app_context():
        db.session.execute(update(LoginSession).values(last_seen_at=long_ago))
        db.session.commit()
    client.get(PROFILE)
    with app.app_context():
        seen = db.session.scalars(select(LoginSession.last_seen_at)).one()
    assert seen > long_ago + timedelta(minutes=59)
    client.get(PROFILE)
    with app.app_context():
        assert db.session.scalars(select(LoginSession.last_seen_at)).one() == seen


# The session is emptied at sign-in and at sign-out; every sign-in is a new identity.

def test_the_reset_token_leaves_the_session_at_sign_in(app: Flask, user: User):
    client = app.test_client()
    token = mint_token(app, user.id)
    assert client.get(link_path(token)).headers["Location"] == "/reset_password"
    assert session_of(client)["reset_token"] == token

    response = client.post("/login", data={"username": "susan", "password": PASSWORD})
    assert response.headers["Location"] == "/index"
    assert "reset_token" not in session_of(client)

    client.post("/logout")
    assert "reset_token" not in session_of(client)
    assert client.get("/reset_password").status_code == 400  # no link in this session


def test_the_reset_token_and_other_state_leave_the_session_at_sign_out(app: Flask, user: User):
    client = signed_in(app)
    with client.session_transaction() as session:
        session["reset_token"] = "left over"
        session["csrf_token"] = "old"
    client.post("/logout")
    assert session_of(client) == {}


def test_flashed_messages_survive_the_emptying(app: Flask, user: User):
    client = signed_in(app)
    client.post("/logout/everywhere")
    assert [m for _, m in session_of(client)["_flashes"]] == [
        "You are signed out on every device."]


def test_every_sign_in_starts_a_new_session(app: Flask, user: User):
    """Session fixation: nothing planted in the session before sign-in survives it."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["csrf_token"] = "planted"
        session["_user_id"] = "planted"
    client.post("/login", data={"username": "susan", "password": PASSWORD})
    first = session_of(client)
    assert first["_user_id"] != "planted" and "csrf_token" not in first

    client.post("/logout")
    client.post("/login", data={"username": "susan", "password": PASSWORD})
    assert session_of(client)["_user_id"] != first["_user_id"]


def test_a_failed_sign_in_records_nothing(app: Flask, user: User):
    client = app.test_client()
    client.post("/login", data={"username": "susan", "password": "wrong password here"})
    assert sign_in_count(app) == 0


# The account page shows where the account is signed in.

def test_the_account_page_lists_sign_ins_and_marks_this_browser(app: Flask, user: User):
    firefox = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
                             "Firefox/128.0"}
    laptop = app.test_client()
    laptop.post("/login", data={"username": "susan", "password": PASSWORD}, headers=firefox)
    signed_in(app)
    page = laptop.get(PROFILE).data.decode()
    assert "Firefox on Linux <strong>(this browser)</strong>" in page
    assert page.count("(this browser)") == 1 and page.count(" UTC, last seen ") == 2
    assert 'action="/logout/everywhere"' in page


def test_another_accounts_page_offers_no_sign_out_everywhere(app: Flask, user: User):
    make_user(app, username="bob", email="bob@example.com")
    page = signed_in(app).get("/user/bob").data
    assert b"/logout/everywhere" not in page and b"Where you are signed in" not in page


@pytest.mark.parametrize(("header", "summary"), [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
    ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Safari/605.1.15", "Safari on macOS"),
    ("curl/8.5.0", "curl"),
    ("", "An unknown browser"),
    ("<script>" * 100, "An unknown browser"),
])
def test_user_agents_are_summarized(header: str, summary: str):
    assert summarize_user_agent(header) == summary


@pytest.mark.parametrize("value", ["1", "1:0", "", "a" * 42, "a" * 44, "a" * 42 + "=",
                                   "²" * 43, "a" * 42 + " ", "../" * 15])
def test_malformed_tokens_load_nobody(app: Flask, value: str):
    with app.test_request_context():
        assert load_user(value) is None


def test_an_unknown_well_formed_token_loads_nobody(app: Flask, user: User):
    with app.test_request_context():
        assert load_user("a" * 43) is None


# Operator commands.

def test_the_purge_command_deletes_only_ended_sign_ins(app: Flask, user: User):
    live, ended = signed_in(app), signed_in(app)
    ended.post("/logout")  # its row is gone already; expire another one
    expired = signed_in(app)
    token = session_of(expired)["_user_id"]
    with app.app_context():
        db.session.execute(update(LoginSession)
                           .where(LoginSession.id == hashlib.sha256(token.encode()).hexdigest())
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["sessions", "purge"])
    assert result.exit_code == 0, result.output
    assert "Purged 1 ended sign-in(s)." in result.output
    assert sign_in_count(app) == 1
    assert live.get(PROFILE).status_code == 200


def test_the_end_command_signs_an_account_out_everywhere(app: Flask, user: User):
    laptop, closed_browser = signed_in(app), remember_cookie_only(app)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sessions", "end", "susan"])
    assert result.exit_code == 0, result.output
    assert signed_out(laptop) and signed_out(closed_browser)
    unknown = runner.invoke(args=["sessions", "end", "nobody"])
    assert unknown.exit_code == 1 and "No account has that username." in unknown.output
