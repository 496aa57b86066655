"""Build each email from its paired templates: one context, a text and an HTML part."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app, render_template
from flask_mail import Message


@dataclass(frozen=True)
class Recipient:
    """The account an email is for, read while the delivery was claimed.

    A plain snapshot rather than the ORM object: the claim commits before the message is
    built, and a committed ORM object would reload each attribute from the database.
    """

    user_id: int
    username: str
    email: str
    password_hash: str


def _message(subject: str, template: str, user: Recipient, **context: Any) -> Message:
    app_name = current_app.config["APP_NAME"]
    context = {"user": user, "app_name": app_name, **context}
    return Message(
        subject=f"[{app_name}] {subject}",
        recipients=[user.email],
        body=render_template(f"email/{template}.txt", **context),
        html=render_template(f"email/{template}.html", **context),
    )


def password_reset_message(user: Recipient, reset_url: str, expires_minutes: int) -> Message:
    return _message("Reset Your Password", "reset_password", user,
                    reset_url=reset_url, expires_minutes=expires_minutes)


def password_changed_message(user: Recipient, changed_at: datetime,
                             reset_request_url: str) -> Message:
    """The notice after a password change: no password in it, and what to do if it was
    not the account holder (ask for a reset, which only the mailbox owner can complete)."""
    return _message("Your Password Was Changed", "password_changed", user,
                    changed_at=changed_at.strftime("%Y-%m-%d %H:%M UTC"),
                    reset_request_url=reset_request_url)
