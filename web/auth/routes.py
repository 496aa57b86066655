"""Register, log in and out, and the two halves of a password reset."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from sqlalchemy import or_, select

from shared.contract import RESET_PASSWORD_PATH
from shared.database import db
from shared.emails import normalize_email
from shared.models import User
from shared.tokens import (
    ExpiredResetToken,
    InvalidResetToken,
    read_reset_token,
    token_matches_password,
)
from web.auth import bp
from web.auth.forms import LoginForm, RegistrationForm, ResetPasswordForm, ResetPasswordRequestForm
from web.password_reset import request_password_reset

log = logging.getLogger(__name__)

CHECK_EMAIL_MESSAGE = "Check your email for the instructions to reset your password"
PASSWORD_RESET_MESSAGE = "Your password has been reset."


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never an open redirect."""
    if target and urlsplit(target).netloc == "" and target.startswith("/") and "//" not in target:
        return target
    return url_for("main.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(User.username == form.username.data))
        if user is None or not user.check_password(form.password.data or ""):
            flash("Invalid username or password", "danger")
            return redirect(url_for("auth.login"))
        login_user(user, remember=form.remember_me.data)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", title="Sign In", form=form)


@bp.route("/logout")
def logout() -> ResponseReturnValue:
    logout_user()
    return redirect(url_for("main.index"))


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = RegistrationForm()
    if form.validate_on_submit():
        email = normalize_email(form.email.data or "")
        taken = db.session.scalar(
            select(User).where(or_(User.username == form.username.data, User.email == email))
        )
        if taken is not None:
            flash("That username or email cannot be used. Please choose another.", "danger")
            return render_template("auth/register.html", title="Register", form=form)
        user = User(username=form.username.data, email=email)
        user.set_password(form.password.data or "")
        db.session.add(user)
        db.session.commit()
        flash("Congratulations, you are now a registered user!", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", title="Register", form=form)


@bp.route("/reset_password_request", methods=["GET", "POST"])
def reset_password_request() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = ResetPasswordRequestForm()
    if form.validate_on_submit():
        request_password_reset(form.email.data or "")
        flash(CHECK_EMAIL_MESSAGE, "info")
        return redirect(url_for("auth.reset_password_sent"))
    return render_template("auth/reset_password_request.html", title="Reset Password", form=form)


@bp.get("/reset_password_request/sent")
def reset_password_sent() -> ResponseReturnValue:
    """The same confirmation for every well-formed request, known address or not."""
    return render_template("auth/reset_password_sent.html", title="Check Your Email")


def _user_for_token(token: str) -> User:
    """The account a live token belongs to; raise `InvalidResetToken` otherwise."""
    secret_key = current_app.config["SECRET_KEY"]
    claims = read_reset_token(secret_key, token)
    user = db.session.get(User, claims.user_id)
    if user is None or not token_matches_password(secret_key, claims, user.password_hash):
        raise InvalidResetToken("used or superseded")
    return user


@bp.route(RESET_PASSWORD_PATH, methods=["GET", "POST"])
def reset_password(token: str) -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    try:
        user = _user_for_token(token)
    except ExpiredResetToken:
        return _invalid_link(expired=True)
    except InvalidResetToken:
        return _invalid_link(expired=False)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        user.set_password(form.password.data or "")
        db.session.commit()
        log.info("password reset user=%s", user.id)
        flash(PASSWORD_RESET_MESSAGE, "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", title="Set New Password", form=form)


def _invalid_link(expired: bool) -> ResponseReturnValue:
    log.info("reset link refused reason=%s", "expired" if expired else "invalid")
    page = render_template("auth/reset_link_invalid.html", title="Link Not Valid", expired=expired)
    return page, 400
