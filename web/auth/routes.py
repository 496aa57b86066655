"""Register, log in and out, and the two halves of a password reset.

Signing out is a POST with the CSRF token (a GET only shows the button), so no other site
can sign a visitor out; see web/login_sessions.py for what signing in and out end.

The reset link's token never stays in the address bar: `GET /reset_password/<token>` checks
it, keeps it in the (signed, HttpOnly) session and redirects to `/reset_password`, which
serves the form, as Django does. A link that is already dead gets its clear page at once.
Scripts may still POST the new password to `/reset_password/<token>`.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from shared.contract import RESET_PASSWORD_PATH
from shared.database import db
from shared.emails import normalize_email
from shared.models import User
from shared.passwords import password_hashing
from shared.tokens import ExpiredResetToken, InvalidResetToken
from web.auth import bp
from web.auth.device_cookies import device_for, remember_device
from web.auth.forms import LoginForm, RegistrationForm, ResetPasswordForm, ResetPasswordRequestForm
from web.login_sessions import sign_in, sign_out, sign_out_everywhere
from web.password_reset import request_password_reset
from web.rate_limits import (
    count_failed_sign_in,
    registrations,
    reset_request_admitted,
    reset_request_ceiling,
    sign_in_admitted,
    token_attempts,
    token_posts,
)
from web.reset_links import open_reset_link, spend_reset_link
from web.security_headers import no_store

log = logging.getLogger(__name__)

CHECK_EMAIL_MESSAGE = "Check your email for the instructions to reset your password"
PASSWORD_RESET_MESSAGE = "Your password has been reset."
REGISTRATION_REFUSED = "That username or email cannot be used. Please choose another."
RESET_TOKEN_SESSION_KEY = "reset_token"
FORM_PATH = "/reset_password"
SIGNED_OUT_EVERYWHERE_MESSAGE = "You are signed out on every device."

# Every auth page: never cached (reset pages hold or follow from a link; the rest hold forms).
bp.after_request(no_store)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never an open redirect."""
    if target and urlsplit(target).netloc == "" and target.startswith("/") and "//" not in target:
        return target
    return url_for("main.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Known or unknown name, the same answers: the same page when refused, one password
    check at the current cost when admitted, none at all when over a sign-in limit."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        username, password = form.username.data or "", form.password.data or ""
        if not sign_in_admitted(username, device_for(request, username)):
            log.info("sign-in throttled ip=%s", request.remote_addr)
            abort(429)
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            password_hashing().check_against_nobody(password)  # as long as a real check
        if (
            user is None
            or not user.check_password(password)
            or not sign_in(user, remember=bool(form.remember_me.data))  # False when inactive
        ):
            count_failed_sign_in()
            flash("Invalid username or password", "danger")
            return redirect(url_for("auth.login"))
        if user.upgrade_password_hash(password):
            db.session.commit()
        return remember_device(redirect(_safe_next(request.args.get("next"))), username)
    return render_template("auth/login.html", title="Sign In", form=form)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    """POST signs this browser out; GET (an old link or bookmark) only offers the button."""
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("main.index"))
        return render_template("auth/logout.html", title="Sign Out")
    sign_out()
    return redirect(url_for("main.index"))


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    """Every browser and device of the account, this one included, is signed out."""
    sign_out_everywhere(current_user)
    flash(SIGNED_OUT_EVERYWHERE_MESSAGE, "success")
    return redirect(url_for("auth.login"))


@bp.route("/register", methods=["GET", "POST"])
@registrations
def register() -> ResponseReturnValue:
    """A taken username and a taken email get one message that names neither field.

    The password is hashed before the check, so a refusal takes as long as a success.
    """
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = RegistrationForm()
    if form.validate_on_submit():
        email = normalize_email(form.email.data or "")
        password_hash = password_hashing().hash(form.password.data or "")
        taken = db.session.scalar(
            select(User.id).where(or_(User.username == form.username.data, User.email == email))
        )
        if taken is not None:
            flash(REGISTRATION_REFUSED, "danger")
            return render_template("auth/register.html", title="Register", form=form)
        db.session.add(User(username=form.username.data, email=email, password_hash=password_hash))
        try:
            db.session.commit()
        except IntegrityError:  # taken by a registration that committed in between
            db.session.rollback()
            flash(REGISTRATION_REFUSED, "danger")
            return render_template("auth/register.html", title="Register", form=form)
        flash("Congratulations, you are now a registered user!", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", title="Register", form=form)


@bp.route("/reset_password_request", methods=["GET", "POST"])
@reset_request_ceiling
def reset_password_request() -> ResponseReturnValue:
    """Known, unknown, inactive or over a rate limit: the same work and the same answer."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = ResetPasswordRequestForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        admitted = reset_request_admitted(email)
        request_password_reset(email, throttled=not admitted)
        flash(CHECK_EMAIL_MESSAGE, "info")
        return redirect(url_for("auth.reset_password_sent"))
    return render_template("auth/reset_password_request.html", title="Reset Password", form=form)


@bp.get("/reset_password_request/sent")
def reset_password_sent() -> ResponseReturnValue:
    """The same confirmation for every well-formed request, known address or not."""
    return render_template("auth/reset_password_sent.html", title="Check Your Email")


@bp.route(RESET_PASSWORD_PATH, methods=["GET", "POST"])
@token_attempts
def reset_password(token: str) -> ResponseReturnValue:
    """The emailed link. GET moves the token into the session; POST (scripts) sets the password."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    if request.method == "POST":
        return _new_password_form(token)
    try:
        open_reset_link(token)
    except InvalidResetToken as exc:
        return _invalid_link(exc)
    session[RESET_TOKEN_SESSION_KEY] = token
    return redirect(url_for("auth.reset_password_form"))


@bp.route(FORM_PATH, methods=["GET", "POST"])
@token_posts
def reset_password_form() -> ResponseReturnValue:
    """The new-password form, for the link kept in the session."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    token = session.get(RESET_TOKEN_SESSION_KEY)
    if not isinstance(token, str):
        return _invalid_link(InvalidResetToken("no link in this session"))
    return _new_password_form(token)


def _new_password_form(token: str) -> ResponseReturnValue:
    try:
        user, claims = open_reset_link(token)
    except InvalidResetToken as exc:
        return _invalid_link(exc)
    form = ResetPasswordForm()
    form.account = user
    if form.validate_on_submit():
        if not spend_reset_link(user, claims, form.password.data or ""):
            return _invalid_link(InvalidResetToken("spent concurrently"))
        session.pop(RESET_TOKEN_SESSION_KEY, None)
        flash(PASSWORD_RESET_MESSAGE, "success")
        # The emailed link vouches for this browser: it signs in even while strangers are
        # throttled for guessing at the name (see device_cookies).
        return remember_device(redirect(url_for("auth.login")), user.username)
    return render_template("auth/reset_password.html", title="Set New Password", form=form)


def _invalid_link(error: InvalidResetToken) -> ResponseReturnValue:
    """A dead link (used, superseded, expired, tampered): a clear page and a way forward."""
    session.pop(RESET_TOKEN_SESSION_KEY, None)
    expired = isinstance(error, ExpiredResetToken)
    # An audit trail of failed attempts (OWASP): the reason and where from, never the token.
    log.info("reset link refused reason=%s ip=%s", "expired" if expired else "invalid",
             request.remote_addr)
    page = render_template("auth/reset_link_invalid.html", title="Link Not Valid", expired=expired)
    return page, 400
