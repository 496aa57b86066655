"""Sign-ins the server can end: one `LoginSession` row per signed-in browser.

Flask-Login keeps `User.get_id()` in the session cookie and in the remember-me cookie;
here that id is a random token of this browser's sign-in, and the row (keyed by its hash)
says whether it still counts. So signing out deletes the row and a copied session or
remember-me cookie loads nobody afterwards, while the account's other browsers stay signed
in; "sign out of all devices" deletes every row of the account and bumps its
`session_version`, as a password reset does.

The rows live in the database every signed-in page already reads (the account itself),
not in Redis: pages keep working while the broker is down.

The session cookie itself is emptied at sign-in and at sign-out (flashed messages
excepted), so a reset link's token or a CSRF token never outlives either, and every
sign-in starts with a fresh session and a fresh identity.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta

from flask import Flask, current_app, request, session
from flask_login import current_user, login_user, logout_user
from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from shared.clock import utcnow
from shared.config import ConfigError, Settings
from shared.database import db
from shared.models import LoginSession, User

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
# `last_seen_at` is written at most this often per browser, not on every request.
LAST_SEEN_EVERY = timedelta(minutes=5)
# What survives the session being emptied at sign-in and sign-out.
KEPT_SESSION_KEYS = ("_flashes",)


def init_login_sessions(app: Flask, settings: Settings) -> None:
    """A sign-in, and its remember-me cookie, last SESSION_LIFETIME_HOURS at most."""
    if settings.session_lifetime_hours <= 0:
        raise ConfigError("SESSION_LIFETIME_HOURS must be a positive number of hours")
    lifetime = timedelta(hours=settings.session_lifetime_hours)
    app.config["REMEMBER_COOKIE_DURATION"] = lifetime


def _lifetime() -> timedelta:
    return current_app.config["REMEMBER_COOKIE_DURATION"]  # type: ignore[no-any-return]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def sign_in(user: User, remember: bool = False) -> bool:
    """Start a new sign-in for this browser; False (and nothing changed) if inactive."""
    if not user.is_active:
        return False
    now = utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.session.execute(  # this account's sign-ins that ran out: tidy as we go
        delete(LoginSession).where(LoginSession.user_id == user.id, _ended(now))
    )
    db.session.add(LoginSession(
        id=_digest(token),
        user_id=user.id,
        session_version=user.session_version or 0,
        created_at=now,
        last_seen_at=now,
        expires_at=now + _lifetime(),
        user_agent=summarize_user_agent(request.user_agent.string),
    ))
    db.session.commit()
    _empty_session()
    user.login_token = token
    return login_user(user, remember=remember)


def load_user(token: str) -> User | None:
    """Flask-Login's user loader, for the session cookie and the remember-me cookie alike."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    found = db.session.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.id == _digest(token))
    ).one_or_none()
    if found is None:
        return None
    login, user = found
    now = utcnow()
    if (
        not user.is_active
        or login.session_version != user.session_version
        or login.expires_at <= now
    ):
        return None
    _note_last_seen(login, now)
    user.login_token = token
    return user


def current_login_id() -> str | None:
    """The `LoginSession.id` of this browser's sign-in, if it is signed in."""
    if not current_user.is_authenticated:
        return None
    return _digest(current_user.get_id())


def sign_out() -> None:
    """End this browser's sign-in: its row, its session and its remember-me cookie."""
    login_id = current_login_id()
    if login_id is not None:
        db.session.execute(delete(LoginSession).where(LoginSession.id == login_id))
        db.session.commit()
    _empty_session()
    logout_user()  # after emptying: it asks for the remember-me cookie to be deleted


def sign_out_everywhere(user: User) -> None:
    """End every sign-in of the account, on every device, this browser included."""
    end_every_sign_in(user.id)
    _empty_session()
    logout_user()


def end_every_sign_in(user_id: int) -> None:
    """Every session and remember-me cookie of the account stops working, now."""
    db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    forget_sign_ins(user_id)
    db.session.commit()
    log.info("signed out everywhere user=%s", user_id)


def forget_sign_ins(user_id: int) -> None:
    """Delete the account's sign-in rows (in the caller's transaction). Whoever signs every
    browser out also bumps `User.session_version`, which ends a sign-in being recorded
    concurrently; this only tidies."""
    db.session.execute(delete(LoginSession).where(LoginSession.user_id == user_id))


def sign_ins_of(user: User) -> list[LoginSession]:
    """The account's live sign-ins, newest first, for its own account page."""
    return list(db.session.scalars(
        select(LoginSession)
        .where(
            LoginSession.user_id == user.id,
            LoginSession.session_version == user.session_version,
            LoginSession.expires_at > utcnow(),
        )
        .order_by(LoginSession.last_seen_at.desc())
    ))


def purge_ended_sign_ins() -> int:
    """Delete the rows of every sign-in that ran out or was ended by a version bump."""
    purged = LoginSession.purge_ended(utcnow())
    db.session.commit()
    return purged


def _ended(now: datetime) -> ColumnElement[bool]:
    return LoginSession.expires_at <= now


def _note_last_seen(login: LoginSession, now: datetime) -> None:
    """At most every few minutes, and only while the request has written nothing yet: the
    commit must not carry a view's half-done work. A failure costs the date, not the page."""
    if now - login.last_seen_at < LAST_SEEN_EVERY:
        return
    if db.session.new or db.session.dirty or db.session.deleted:
        return
    login.last_seen_at = now
    try:
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("could not note a sign-in as seen: %s", type(exc).__name__)


def _empty_session() -> None:
    """Everything goes (a reset token, the CSRF token, the old identity) but flashes."""
    kept = {key: session[key] for key in KEPT_SESSION_KEYS if key in session}
    session.clear()
    session.update(kept)


BROWSERS = (
    ("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"), ("CriOS/", "Chrome"), ("Safari/", "Safari"), ("curl/", "curl"),
)
PLATFORMS = (
    ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("CrOS", "ChromeOS"),
    ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Linux", "Linux"),
)


def summarize_user_agent(header: str) -> str:
    """"Firefox on Linux": enough for a person to recognise a device, no more."""
    browser = next((name for mark, name in BROWSERS if mark in header), None)
    platform = next((name for mark, name in PLATFORMS if mark in header), None)
    if browser and platform:
        return f"{browser} on {platform}"
    return browser or (f"A browser on {platform}" if platform else "An unknown browser")
