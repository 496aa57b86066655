"""What Flower shows for an email task: RETRY for a transient failure, FAILURE for a dead
letter, and never the recipient's full address in either."""

from __future__ import annotations

import smtplib

import pytest
from celery.exceptions import Retry
from flask import Flask

from shared.models import DeliveryStatus, User
from worker import smtp
from worker.smtp_errors import classify
from worker.tasks import DeadLettered, TransientSendFailure, send_password_reset


def test_a_transient_failure_ends_the_task_as_retry_without_a_countdown_message(
        worker_app: Flask, user: User, outbox, monkeypatch):
    def busy(message):
        raise smtplib.SMTPDataError(451, b"4.3.0 try again later")

    monkeypatch.setattr(smtp, "send", busy)
    delivery_id = outbox.add()
    with worker_app.app_context(), pytest.raises(Retry) as raised:
        send_password_reset.run(delivery_id)
    assert isinstance(raised.value.exc, TransientSendFailure)
    assert "451" in str(raised.value.exc)
    assert raised.value.sig is None  # nothing is republished by Celery: the relay does it
    assert outbox.get(delivery_id).status == DeliveryStatus.RETRYING


def test_a_dead_letter_ends_the_task_as_failure_with_a_masked_reason(
        worker_app: Flask, user: User, outbox, monkeypatch):
    def refused(message):
        raise smtplib.SMTPRecipientsRefused(
            {"susan@example.com": (550, b"5.1.1 <susan@example.com>: no such user")})

    monkeypatch.setattr(smtp, "send", refused)
    delivery_id = outbox.add()
    with worker_app.app_context(), pytest.raises(DeadLettered) as raised:
        send_password_reset.run(delivery_id)
    assert "550" in str(raised.value)
    assert "susan@example.com" not in str(raised.value)
    assert "s***@example.com" in str(raised.value)
    assert outbox.get(delivery_id).status == DeliveryStatus.FAILED


def test_smtp_replies_never_carry_a_full_address():
    failure = classify(smtplib.SMTPDataError(554, b"5.7.1 <john.doe@example.org> rejected"))
    assert "john.doe@example.org" not in failure.reason
    assert "j***@example.org" in failure.reason
