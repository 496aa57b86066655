"""The worker turns an outbox row into one multipart email with an absolute link."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from flask import Flask

from shared.clock import utcnow
from shared.config import Settings
from shared.database import db
from shared.models import DeliveryKind, DeliveryStatus, User
from shared.tokens import read_reset_token, token_matches_password
from worker import smtp
from worker.app import mail
from worker.delivery import backoff_seconds, deliver
from worker.kinds import KINDS
from worker.tasks import send_password_changed, send_password_reset


def test_sends_both_parts_with_an_absolute_link_to_the_right_person(worker_app: Flask,
                                                                    user: User, outbox):
    delivery_id = outbox.add()
    with worker_app.app_context(), mail.record_messages() as sent:
        assert send_password_reset.run(delivery_id) == "sent"
    [message] = sent
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
    row = outbox.get(delivery_id)
    assert row.status == DeliveryStatus.SENT and row.sent_at is not None
    [attempt] = outbox.attempts(delivery_id)
    assert attempt.outcome == "sent" and attempt.finished_at is not None


def test_password_changed_notice_says_what_to_do_and_carries_no_secret(
        worker_app: Flask, user: User, outbox):
    delivery_id = outbox.add(kind=DeliveryKind.PASSWORD_CHANGED)
    with worker_app.app_context(), mail.record_messages() as sent:
        assert send_password_changed.run(delivery_id) == "sent"
    [message] = sent
    assert message.recipients == ["susan@example.com"]
    assert message.subject == "[Microblog] Your Password Was Changed"
    request_link = "https://microblog.example.test/reset_password_request"
    for part in (message.body, message.html):
        assert request_link in part
        assert "did not" in part and "reset" in part.lower()
        assert "/reset_password/" not in part  # no reset token: only the mailbox owner gets one
        assert "correct horse battery" not in part
    assert outbox.get(delivery_id).status == DeliveryStatus.SENT


def test_every_kind_has_a_task_and_a_message():
    assert set(KINDS) == {kind.value for kind in DeliveryKind}
    assert {kind.task_name for kind in KINDS.values()} == {
        "email.send_password_reset", "email.send_password_changed"}


def test_the_rows_kind_decides_the_message_whichever_task_carried_it(
        worker_app: Flask, user: User, outbox):
    delivery_id = outbox.add(kind=DeliveryKind.PASSWORD_CHANGED)
    with worker_app.app_context(), mail.record_messages() as sent:
        send_password_reset.run(delivery_id)
    assert sent[0].subject == "[Microblog] Your Password Was Changed"


def test_redelivered_task_for_a_sent_row_sends_nothing(worker_app: Flask, user: User, outbox):
    delivery_id = outbox.add()
    with worker_app.app_context(), mail.record_messages() as sent:
        send_password_reset.run(delivery_id)
        assert send_password_reset.run(delivery_id) == "sent"
    assert len(sent) == 1
    assert outbox.get(delivery_id).attempts == 1


def test_unknown_address_sends_nothing(worker_app: Flask, user: User, outbox):
    delivery_id = outbox.add("nobody@example.com")
    with worker_app.app_context(), mail.record_messages() as sent:
        assert deliver(delivery_id).status == "no_account"
    assert sent == []


def test_request_too_old_to_give_a_working_link_is_expired(worker_app: Flask, user: User,
                                                           outbox):
    delivery_id = outbox.add(created_at=utcnow() - timedelta(minutes=9, seconds=30))
    with worker_app.app_context(), mail.record_messages() as sent:
        assert deliver(delivery_id).status == "expired"
    assert sent == []
    assert "expire" in outbox.get(delivery_id).last_error


def test_transient_smtp_failure_leaves_the_row_for_the_relay(worker_app: Flask, user: User,
                                                             outbox, monkeypatch):
    def busy(message):
        raise smtplib.SMTPDataError(451, b"try again later")

    monkeypatch.setattr(smtp, "send", busy)
    delivery_id = outbox.add()
    with worker_app.app_context():
        outcome = deliver(delivery_id)
    assert outcome.status == "retrying" and outcome.retry_in is not None
    row = outbox.get(delivery_id)
    assert row.status == DeliveryStatus.RETRYING and row.attempts == 1
    assert "451" in row.last_error and row.next_attempt_at > utcnow()
    assert row.lease_until is None
    [attempt] = outbox.attempts(delivery_id)
    assert attempt.outcome == "retrying" and "451" in attempt.error
    assert attempt.retry_at == row.next_attempt_at


def test_a_retry_is_not_taken_before_it_is_due(worker_app: Flask, user: User, outbox):
    delivery_id = outbox.add(status="retrying", attempts=1,
                             next_attempt_at=utcnow() + timedelta(seconds=30))
    with worker_app.app_context(), mail.record_messages() as sent:
        assert deliver(delivery_id).status == "retrying"
    assert sent == [] and outbox.get(delivery_id).attempts == 1

    outbox.update(delivery_id, next_attempt_at=utcnow() - timedelta(seconds=1))
    with worker_app.app_context(), mail.record_messages() as sent:
        assert deliver(delivery_id).status == "sent"
    assert len(sent) == 1 and outbox.get(delivery_id).attempts == 2


def test_a_live_claim_is_left_alone_and_a_dead_one_is_taken_over(worker_app: Flask,
                                                                  user: User, outbox):
    delivery_id = outbox.add(status="sending", attempts=1,
                             lease_until=utcnow() + timedelta(seconds=20))
    with worker_app.app_context(), mail.record_messages() as sent:
        assert deliver(delivery_id).status == "sending"
    assert sent == []

    outbox.update(delivery_id, lease_until=utcnow() - timedelta(seconds=1))
    with worker_app.app_context(), mail.record_messages() as sent:
        assert deliver(delivery_id).status == "sent"
    assert len(sent) == 1 and outbox.get(delivery_id).attempts == 2


def test_permanent_smtp_failure_is_dead_lettered_at_once(worker_app: Flask, user: User,
                                                         outbox, monkeypatch):
    def refused(message):
        raise smtplib.SMTPRecipientsRefused({"susan@example.com": (550, b"no such user")})

    monkeypatch.setattr(smtp, "send", refused)
    delivery_id = outbox.add()
    with worker_app.app_context():
        assert deliver(delivery_id).status == "failed"
    row = outbox.get(delivery_id)
    assert row.status == DeliveryStatus.FAILED and "550" in row.last_error
    assert row.next_attempt_at is None and row.attempts == 1


def test_gives_up_after_the_last_attempt(worker_app: Flask, user: User, outbox, monkeypatch):
    def down(message):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(smtp, "send", down)
    limit = worker_app.config["SETTINGS"].delivery_max_attempts
    delivery_id = outbox.add(attempts=limit - 1)
    with worker_app.app_context():
        assert deliver(delivery_id).status == "failed"
    assert "gave up after" in outbox.get(delivery_id).last_error


def test_attempts_that_never_reported_back_end_in_the_dead_letters(worker_app: Flask,
                                                                   user: User, outbox):
    limit = worker_app.config["SETTINGS"].delivery_max_attempts
    delivery_id = outbox.add(status="sending", attempts=limit,
                             lease_until=utcnow() - timedelta(seconds=1))
    with worker_app.app_context(), mail.record_messages() as sent:
        assert deliver(delivery_id).status == "failed"
    assert sent == []
    assert "did not finish" in outbox.get(delivery_id).last_error


def test_a_retry_that_would_come_after_the_link_died_expires_now(worker_app: Flask, user: User,
                                                                 outbox, monkeypatch):
    def busy(message):
        raise smtplib.SMTPDataError(421, b"busy")

    monkeypatch.setattr(smtp, "send", busy)
    # 8 min 40 s old: 80 s of link left, 20 s more than the minimum, less than the backoff.
    delivery_id = outbox.add(created_at=utcnow() - timedelta(minutes=8, seconds=40),
                             attempts=5)
    with worker_app.app_context():
        assert deliver(delivery_id).status == "expired"
    row = outbox.get(delivery_id)
    assert "expire before the next attempt" in row.last_error and "421" in row.last_error


def test_a_password_changed_notice_has_no_deadline(worker_app: Flask, user: User, outbox):
    delivery_id = outbox.add(kind=DeliveryKind.PASSWORD_CHANGED,
                             created_at=utcnow() - timedelta(hours=2))
    with worker_app.app_context(), mail.record_messages() as sent:
        assert deliver(delivery_id).status == "sent"
    assert len(sent) == 1


def test_unknown_kind_is_dead_lettered(worker_app: Flask, outbox):
    delivery_id = outbox.add(kind=DeliveryKind.PASSWORD_RESET)
    outbox.update(delivery_id, kind="carrier_pigeon")
    with worker_app.app_context():
        assert deliver(delivery_id).status == "failed"
    assert "unknown kind" in outbox.get(delivery_id).last_error


def test_missing_row_is_skipped(worker_app: Flask):
    with worker_app.app_context():
        assert deliver("0" * 32).status == "missing"


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_grows_and_is_capped(attempt: int):
    delay = backoff_seconds(attempt, base=2, cap=120)
    assert 0 < delay <= 120
    assert delay >= min(120, 2 * 2 ** (attempt - 1)) / 2


def test_default_retries_span_the_link_lifetime_but_not_much_more():
    settings = Settings()
    worst = sum(min(settings.retry_backoff_max, settings.retry_backoff_base * 2 ** (n - 1))
                for n in range(1, settings.delivery_max_attempts))
    assert 4 * 60 < worst < settings.reset_token_minutes * 60
