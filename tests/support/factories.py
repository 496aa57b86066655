"""Test data: users made through the model, as the app makes them."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from shared.database import db
from shared.models import DeliveryKind, DeliveryStatus, EmailDelivery, RelaySweep, User

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


def add_delivery(app: Flask, status: DeliveryStatus = DeliveryStatus.QUEUED,
                 **fields: object) -> str:
    """An outbox row in any state, its timestamps given as the test needs them."""
    with app.app_context():
        row = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, "someone@example.com")
        row.status = status.value
        for name, value in fields.items():
            setattr(row, name, value)
        db.session.add(row)
        db.session.commit()
        return str(row.id)


def record_sweep(app: Flask, swept_at: datetime | None) -> None:
    """The relay's sweep record, as a worker's finished sweep leaves it."""
    with app.app_context():
        db.session.merge(RelaySweep(name="outbox", last_swept_at=swept_at))
        db.session.commit()
