"""SMTP failures are sorted once: retry what may pass, dead-letter what never will."""

from __future__ import annotations

import smtplib

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from worker.smtp_errors import classify


@pytest.mark.parametrize("exc", [
    smtplib.SMTPDataError(451, b"local error"),
    smtplib.SMTPConnectError(421, b"service not available"),
    smtplib.SMTPSenderRefused(452, b"insufficient storage", "a@b"),
    smtplib.SMTPRecipientsRefused({"a@b": (450, b"mailbox busy")}),
    smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError("timed out"),
    TimeoutError(),
    SoftTimeLimitExceeded(),
])
def test_transient(exc: BaseException):
    assert classify(exc).transient


@pytest.mark.parametrize("exc", [
    smtplib.SMTPDataError(554, b"rejected"),
    smtplib.SMTPRecipientsRefused({"a@b": (550, b"no such user")}),
    smtplib.SMTPRecipientsRefused({"a@b": (550, b"no"), "c@d": (451, b"later")}),
    smtplib.SMTPAuthenticationError(535, b"bad credentials"),
    smtplib.SMTPSenderRefused(553, b"sender not allowed", "a@b"),
    ValueError("a bug"),
])
def test_permanent(exc: BaseException):
    failure = classify(exc)
    assert not failure.transient and failure.reason
