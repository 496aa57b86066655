"""worker/smtp.py against a real SMTP server on loopback: refusals, timeouts, reconnects."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator

import pytest
from flask import Flask
from flask_mail import Message
from support.mailbox import SmtpServer
from support.silent_smtp import SilentServer

from scripts.embedded_redis import free_port
from shared.config import Settings
from worker import smtp
from worker.app import create_worker_app
from worker.smtp_errors import classify

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    running = SmtpServer(free_port()).start()
    yield running
    running.stop()


def app_for(settings: Settings, port: int) -> Flask:
    return create_worker_app(settings.with_overrides(mail_port=port, smtp_timeout_seconds=0.5))


@pytest.fixture(autouse=True)
def fresh_connection() -> Iterator[None]:
    smtp.forget_connection()
    yield
    smtp.close_connection()


def message(*recipients: str) -> Message:
    return Message(subject="hello", recipients=list(recipients), body="hi",
                   sender="Microblog <no-reply@example.test>")


def test_a_partial_recipient_refusal_is_not_a_success(settings: Settings, server: SmtpServer):
    server.mailbox.rcpt_replies["gone@example.com"] = "550 5.1.1 No such user"
    with app_for(settings, server.port).app_context():
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send(message("susan@example.com", "gone@example.com"))
    assert not classify(refused.value).transient
    assert "gone@example.com" in refused.value.recipients


def test_the_connection_is_kept_and_reopened_once_the_server_dropped_it(
        settings: Settings, server: SmtpServer):
    with app_for(settings, server.port).app_context():
        smtp.send(message("a@example.com"))
        first = smtp._connection
        smtp.send(message("b@example.com"))
        assert smtp._connection is first  # one connection per process
        server.stop()
        server.start()  # the old connection is dead; the next send reopens once
        smtp.send(message("c@example.com"))
    assert [m.envelope_to for m in server.mailbox.received] == [
        ["a@example.com"], ["b@example.com"], ["c@example.com"]]


def test_a_silent_server_ends_in_a_transient_timeout(settings: Settings):
    silent = SilentServer(free_port()).start()
    try:
        with app_for(settings, silent.port).app_context():
            with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)) as waited:
                smtp.send(message("susan@example.com"))
    finally:
        silent.stop()
    assert classify(waited.value).transient


def test_a_closed_port_is_a_transient_refusal(settings: Settings):
    with app_for(settings, free_port()).app_context():
        with pytest.raises(ConnectionRefusedError) as refused:
            smtp.send(message("susan@example.com"))
    assert classify(refused.value).transient


BOUNDARY = re.compile(rb"={15}\d+==")


@pytest.mark.parametrize("username, subject", [
    ("susan", "[Microblog] Reset Your Password"),
    ("Zoë Ångström-Łukasiewicz", "[Microblog] Réinitialiser le mot de passe — " + "long " * 20),
])
def test_the_wire_format_is_flask_mails_own(settings: Settings, server: SmtpServer,
                                            username: str, subject: str):
    """The cheaper policy writes the very bytes Flask-Mail's policy.SMTP writes."""
    body = (f"Hi {username},\n\nFrom here on, a line with a dot:\n.\n"
            f"and a long line {'x' * 300}\n")
    sent = Message(subject=subject, recipients=["zoe@example.com"], body=body,
                   html=f"<p>Hi {username},</p>", sender=("Micrøblog", "no-reply@example.test"))
    with app_for(settings, server.port).app_context():
        ours, theirs = smtp.wire_bytes(sent), sent.as_bytes()
        smtp.send(sent)
    assert BOUNDARY.sub(b"B", ours) == BOUNDARY.sub(b"B", theirs)
    [received] = server.mailbox.wait_for(1)
    assert received.message["Subject"] == subject
    assert received.text.replace("\r\n", "\n") == body
    assert received.html.strip() == f"<p>Hi {username},</p>"
