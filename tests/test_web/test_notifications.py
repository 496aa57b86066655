"""A successful reset records and publishes a "your password was changed" notice, nothing more."""

from __future__ import annotations

import base64
import json

import fakeredis
from flask import Flask
from flask.testing import FlaskClient
from support.factories import PASSWORD
from support.reset_links import link_path, mint_token

from shared.contract import SEND_PASSWORD_CHANGED
from shared.database import db
from shared.models import DeliveryKind, DeliveryStatus, EmailDelivery, User

NEW_PASSWORD = "a brand new passphrase"
NEW = {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}


def queued(broker: fakeredis.FakeRedis) -> list[dict]:
    return [json.loads(raw) for raw in broker.lrange("email", 0, -1)]


def deliveries(app: Flask) -> list[EmailDelivery]:
    with app.app_context():
        rows = list(db.session.scalars(db.select(EmailDelivery)))
        for row in rows:
            db.session.expunge(row)
        return rows


def test_reset_queues_the_password_changed_notice(client: FlaskClient, app: Flask,
                                                  fake_broker, user: User):
    token = mint_token(app, user.id)
    client.get(link_path(token))
    client.post("/reset_password", data=NEW)

    [notice] = deliveries(app)
    assert notice.kind == DeliveryKind.PASSWORD_CHANGED
    assert notice.email == "susan@example.com"
    assert notice.status == DeliveryStatus.QUEUED

    [message] = queued(fake_broker)
    assert message["headers"]["task"] == SEND_PASSWORD_CHANGED
    assert message["headers"]["kwargsrepr"] == repr({"delivery_id": notice.id})
    body = json.loads(base64.b64decode(message["body"]))
    assert body[0] == [] and body[1] == {"delivery_id": notice.id}
    raw = json.dumps(message)
    for secret in (NEW_PASSWORD, PASSWORD, token, "susan@example.com", "susan"):
        assert secret not in raw


def test_no_notice_when_the_link_is_dead(client: FlaskClient, app: Flask, fake_broker,
                                         user: User):
    older = mint_token(app, user.id)
    mint_token(app, user.id)
    assert client.post(link_path(older), data=NEW).status_code == 400
    assert deliveries(app) == [] and queued(fake_broker) == []


def test_no_notice_when_the_form_is_refused(client: FlaskClient, app: Flask, fake_broker,
                                            user: User):
    client.get(link_path(mint_token(app, user.id)))
    client.post("/reset_password", data={"password": "short", "password2": "short"})
    assert deliveries(app) == [] and queued(fake_broker) == []


def test_notice_is_recorded_even_when_the_broker_is_down(client: FlaskClient, app: Flask,
                                                         monkeypatch, user: User):
    """The row commits with the password, so the outbox sweep can send it later."""
    from kombu.exceptions import OperationalError

    def broker_down(*args, **kwargs):
        raise OperationalError("Connection refused.")

    monkeypatch.setattr(app.extensions["celery"], "send_task", broker_down)
    response = client.post(link_path(mint_token(app, user.id)), data=NEW)
    assert response.headers["Location"] == "/login"
    [notice] = deliveries(app)
    assert (notice.kind, notice.status) == (DeliveryKind.PASSWORD_CHANGED, DeliveryStatus.QUEUED)

