"""Helpers for worker tests: outbox rows made as the web tier makes them."""

from __future__ import annotations

from datetime import datetime

import pytest
from flask import Flask

from shared.database import db
from shared.models import DeliveryAttempt, DeliveryKind, EmailDelivery


class Outbox:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def add(self, email: str = "susan@example.com",
            kind: DeliveryKind = DeliveryKind.PASSWORD_RESET,
            created_at: datetime | None = None, **fields: object) -> str:
        with self.app.app_context():
            delivery = EmailDelivery.new(kind, email)
            if created_at is not None:
                delivery.created_at = created_at
            for name, value in fields.items():
                setattr(delivery, name, value)
            db.session.add(delivery)
            db.session.commit()
            return delivery.id

    def get(self, delivery_id: str) -> EmailDelivery:
        with self.app.app_context():
            row = db.session.get(EmailDelivery, delivery_id)
            assert row is not None
            db.session.expunge(row)
            return row

    def attempts(self, delivery_id: str) -> list[DeliveryAttempt]:
        with self.app.app_context():
            rows = db.session.scalars(
                db.select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
                .order_by(DeliveryAttempt.id)
            ).all()
            for row in rows:
                db.session.expunge(row)
            return list(rows)

    def update(self, delivery_id: str, **fields: object) -> None:
        with self.app.app_context():
            db.session.execute(db.update(EmailDelivery).where(EmailDelivery.id == delivery_id)
                               .values(**fields))
            db.session.commit()


@pytest.fixture
def outbox(worker_app: Flask) -> Outbox:
    return Outbox(worker_app)
