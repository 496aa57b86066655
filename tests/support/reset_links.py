"""Mint reset links the way the worker does: bump the account's generation, then sign."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask

from shared.database import db
from shared.models import User
from shared.tokens import issue_reset_token


def mint_token(app: Flask, user_id: int, now: datetime | None = None,
               secret_key: str | None = None, minutes: int = 10) -> str:
    with app.app_context():
        generation = User.bump_reset_generation(user_id)
        db.session.commit()
        user = db.session.get(User, user_id)
        assert user is not None
        return issue_reset_token(secret_key or app.config["SECRET_KEY"], user.id,
                                 user.password_hash, timedelta(minutes=minutes), now=now,
                                 generation=generation)


def link_path(token: str) -> str:
    return f"/reset_password/{token}"
