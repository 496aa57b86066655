"""Test data: users made through the model, as the app makes them."""

from __future__ import annotations

from flask import Flask

from shared.database import db
from shared.models import User

PASSWORD = "correct horse battery"


def make_user(app: Flask, username: str = "susan", email: str = "susan@example.com",
              password: str = PASSWORD) -> User:
    with app.app_context():
        user = User(username=username, email=email)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
        return user
