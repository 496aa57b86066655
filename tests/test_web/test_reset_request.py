"""Asking for a reset: the same answer for everyone, and only an id on the queue."""

from __future__ import annotations

import base64
import json

import fakeredis
from flask import Flask
from flask.testing import FlaskClient

from shared.database import db
from shared.models import DeliveryStatus, EmailDelivery, User

CHECK_EMAIL = b"Check your email for the instructions to reset your password"


def queued_messages(broker: fakeredis.FakeRedis) -> list[dict]:
    return [json.loads(raw) for raw in broker.lrange("email", 0, -1)]


def test_known_email_records_and_enqueues_only_an_id(client: FlaskClient, app: Flask,
                                                    fake_broker, user: User):
    response = client.post("/reset_password_request", data={"email": " Susan@Example.com "})
    assert response.status_code == 302
    assert response.headers["Location"] == "/reset_password_request/sent"
    assert CHECK_EMAIL in client.get("/reset_password_request/sent").data

    with app.app_context():
        delivery = db.session.scalars(db.select(EmailDelivery)).one()
        assert delivery.email == "susan@example.com"
        assert delivery.status == DeliveryStatus.QUEUED

    [message] = queued_messages(fake_broker)
    assert message["headers"]["task"] == "email.send_password_reset"
    assert message["properties"]["delivery_info"]["routing_key"] == "email"
    body = json.loads(base64.b64decode(message["body"]))
    assert body[0] == [] and body[1] == {"delivery_id": delivery.id}
    # The first attempt's identity, as the relay names later ones (`<id>-<n>`).
    assert (message["headers"]["id"], message["headers"]["retries"]) == (f"{delivery.id}-1", 0)
    raw = json.dumps(message)
    assert "susan" not in raw.lower() and "example.com" not in raw


def test_unknown_email_gets_the_same_answer_and_the_same_work(client: FlaskClient, app: Flask,
                                                              fake_broker, user: User):
    known = client.post("/reset_password_request", data={"email": "susan@example.com"})
    unknown = client.post("/reset_password_request", data={"email": "nobody@example.com"})
    assert (known.status_code, known.headers["Location"]) == (
        unknown.status_code, unknown.headers["Location"])
    assert sorted(known.headers.keys()) == sorted(unknown.headers.keys())
    assert len(queued_messages(fake_broker)) == 2
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(EmailDelivery)) == 2


def test_malformed_email_is_shown_next_to_the_field_and_nothing_is_queued(
        client: FlaskClient, fake_broker):
    response = client.post("/reset_password_request", data={"email": "not an email"})
    assert response.status_code == 200
    assert b"Invalid email address" in response.data
    assert queued_messages(fake_broker) == []


def test_reset_request_survives_a_broker_outage(client: FlaskClient, app: Flask,
                                                monkeypatch, user: User):
    """Redis down: the user gets the normal answer; the row stays queued for the sweep."""
    from kombu.exceptions import OperationalError

    celery = app.extensions["celery"]

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(celery, "send_task", broker_down)
    response = client.post("/reset_password_request", data={"email": "susan@example.com"})
    assert response.status_code == 302
    with app.app_context():
        delivery = db.session.scalars(db.select(EmailDelivery)).one()
        assert delivery.status == DeliveryStatus.QUEUED


def test_signed_in_user_is_sent_home(client: FlaskClient, user: User, auth):
    auth.login()
    assert client.get("/reset_password_request").headers["Location"] == "/index"


def test_reset_button_says_what_it_does(client: FlaskClient):
    assert b'value="Reset Password"' in client.get("/reset_password_request").data


def test_flower_sees_only_the_delivery_id(client: FlaskClient, app: Flask, fake_broker,
                                          user: User):
    client.post("/reset_password_request", data={"email": "susan@example.com"})
    [message] = queued_messages(fake_broker)
    assert message["headers"]["argsrepr"] == "()"
    assert message["headers"]["kwargsrepr"].startswith("{'delivery_id': '")
    assert "susan" not in message["headers"]["kwargsrepr"]
