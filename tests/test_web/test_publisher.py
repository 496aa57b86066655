"""Publishing with the broker down: the request is answered, the row waits for the relay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from support.web_apps import built_web_app

from shared.clock import utcnow
from shared.config import Settings
from shared.contract import SEND_PASSWORD_RESET, DeliveryPayload
from shared.database import db
from shared.models import DeliveryKind, EmailDelivery
from web.publisher import publish_delivery


@pytest.fixture
def app_without_broker(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """Nothing listens on port 1: every connection attempt is refused at once."""
    with built_web_app(settings.with_overrides(publish_timeout_seconds=0.5)) as app:
        yield app


def test_a_refused_publish_marks_the_row_for_the_next_relay_sweep(app_without_broker: Flask):
    with app_without_broker.app_context():
        delivery = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, "susan@example.com")
        db.session.add(delivery)
        db.session.commit()
        published = publish_delivery(app_without_broker.extensions["celery"],
                                     SEND_PASSWORD_RESET, DeliveryPayload(delivery.id))
        assert published is False
        row = db.session.get(EmailDelivery, delivery.id, populate_existing=True)
        assert row.status == "queued"
        assert row.relay_after is not None and row.relay_after <= utcnow()


def test_the_user_gets_the_normal_answer_with_the_broker_down(app_without_broker: Flask):
    app_without_broker.config["WTF_CSRF_ENABLED"] = False
    client = app_without_broker.test_client()
    response = client.post("/reset_password_request", data={"email": "susan@example.com"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/reset_password_request/sent"
    with app_without_broker.app_context():
        row = db.session.scalars(db.select(EmailDelivery)).one()
        assert row.relay_after is not None
