"""The worker turns an outbox row into one multipart email with an absolute link."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from flask import Flask

from shared.clock import utcnow
from shared.database import db
from shared.models import DeliveryKind, DeliveryStatus, EmailDelivery, User
from shared.tokens import read_reset_token, token_matches_password
from worker import smtp
from worker.app import mail
from worker.delivery import MAX_ATTEMPTS, backoff_seconds, deliver_password_reset
from worker.tasks import send_password_reset


def queue_delivery(app: Flask, email: str, created_at=None) -> str:
    with app.app_context():
        delivery = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, email)
        if created_at is not None:
            delivery.created_at = created_at
        db.session.add(delivery)
        db.session.commit()
        return delivery.id


def status_of(app: Flask, delivery_id: str) -> EmailDelivery:
    with app.app_context():
        row = db.session.get(EmailDelivery, delivery_id)
        db.session.expunge(row)
        return row


def test_sends_both_parts_with_an_absolute_link_to_the_right_person(worker_app: Flask,
                                                                    user: User):
    delivery_id = queue_delivery(worker_app, "susan@example.com")
    with worker_app.app_context(), mail.record_messages() as outbox:
        assert send_password_reset.run(delivery_id) == "sent"
    [message] = outbox
    assert message.recipients == ["susan@example.com"]
    assert message.subject == "[Microblog] Reset Your Password"
    assert message.sender == "Microblog <no-reply@example.test>"
    link_prefix = "https://microblog.example.test/reset_password/"
    assert link_prefix in message.body and link_prefix in message.html
    token = message.body.split(link_prefix)[1].split()[0]
    with worker_app.app_context():
        claims = read_reset_token(worker_app.config["SECRET_KEY"], token)
        current = db.session.get(User, user.id)
        assert claims.user_id == user.id
        assert token_matches_password(worker_app.config["SECRET_KEY"], claims,
                                      current.password_hash)
    assert "for the next 10 minutes" in message.body
    assert status_of(worker_app, delivery_id).status == DeliveryStatus.SENT


def test_redelivered_task_for_a_sent_row_sends_nothing(worker_app: Flask, user: User):
    delivery_id = queue_delivery(worker_app, "susan@example.com")
    with worker_app.app_context(), mail.record_messages() as outbox:
        send_password_reset.run(delivery_id)
        assert send_password_reset.run(delivery_id) == "sent"
    assert len(outbox) == 1
    assert status_of(worker_app, delivery_id).attempts == 1


def test_unknown_address_sends_nothing(worker_app: Flask, user: User):
    delivery_id = queue_delivery(worker_app, "nobody@example.com")
    with worker_app.app_context(), mail.record_messages() as outbox:
        assert deliver_password_reset(delivery_id).status == "no_account"
    assert outbox == []


def test_request_too_old_to_give_a_working_link_is_expired(worker_app: Flask, user: User):
    delivery_id = queue_delivery(worker_app, "susan@example.com",
                                 created_at=utcnow() - timedelta(minutes=9, seconds=30))
    with worker_app.app_context(), mail.record_messages() as outbox:
        assert deliver_password_reset(delivery_id).status == "expired"
    assert outbox == []
    assert "expire" in status_of(worker_app, delivery_id).last_error


def test_transient_smtp_failure_schedules_a_retry(worker_app: Flask, user: User, monkeypatch):
    def busy(message):
        raise smtplib.SMTPDataError(451, b"try again later")

    monkeypatch.setattr(smtp, "send", busy)
    delivery_id = queue_delivery(worker_app, "susan@example.com")
    with worker_app.app_context():
        outcome = deliver_password_reset(delivery_id)
    assert outcome.status == "retrying" and outcome.retry_in is not None
    row = status_of(worker_app, delivery_id)
    assert row.status == DeliveryStatus.RETRYING and row.attempts == 1
    assert "451" in row.last_error and row.next_attempt_at is not None


def test_permanent_smtp_failure_is_dead_lettered_at_once(worker_app: Flask, user: User,
                                                         monkeypatch):
    def refused(message):
        raise smtplib.SMTPRecipientsRefused({"susan@example.com": (550, b"no such user")})

    monkeypatch.setattr(smtp, "send", refused)
    delivery_id = queue_delivery(worker_app, "susan@example.com")
    with worker_app.app_context():
        assert deliver_password_reset(delivery_id).status == "failed"
    row = status_of(worker_app, delivery_id)
    assert row.status == DeliveryStatus.FAILED and "550" in row.last_error


def test_gives_up_after_the_last_attempt(worker_app: Flask, user: User, monkeypatch):
    def down(message):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(smtp, "send", down)
    delivery_id = queue_delivery(worker_app, "susan@example.com")
    with worker_app.app_context():
        db.session.execute(db.update(EmailDelivery).values(attempts=MAX_ATTEMPTS - 1))
        db.session.commit()
        assert deliver_password_reset(delivery_id).status == "failed"
    assert "gave up" in status_of(worker_app, delivery_id).last_error


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_grows_and_is_capped(attempt: int):
    delay = backoff_seconds(attempt)
    assert 0 < delay <= 60
    assert delay >= min(60, 2 * 2 ** (attempt - 1)) / 2
