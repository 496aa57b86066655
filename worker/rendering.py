"""Build the reset email from its paired templates: one context, a text and an HTML part."""

from __future__ import annotations

from flask import current_app, render_template
from flask_mail import Message

from shared.models import User


def password_reset_message(user: User, reset_url: str, expires_minutes: int) -> Message:
    app_name = current_app.config["APP_NAME"]
    context = {
        "user": user,
        "reset_url": reset_url,
        "expires_minutes": expires_minutes,
        "app_name": app_name,
    }
    return Message(
        subject=f"[{app_name}] Reset Your Password",
        recipients=[user.email],
        body=render_template("email/reset_password.txt", **context),
        html=render_template("email/reset_password.html", **context),
    )
