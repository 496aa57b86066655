"""SMTP failures are sorted once: retry what may pass, dead-letter what never will."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from worker.smtp_errors import InsecureConnection, classify


def certificate_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


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
    certificate_error(62, "Hostname mismatch, certificate is not valid for 'x'."),
    ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
    InsecureConnection("SMTP server does not offer STARTTLS; not sending in clear"),
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


@pytest.mark.parametrize("code, message, reason", [
    (62, "Hostname mismatch, certificate is not valid for 'x'.", "host name mismatch"),
    (18, "self-signed certificate", "self-signed certificate"),
    (20, "unable to get local issuer certificate", "unknown issuer"),
    (10, "certificate has expired", "certificate expired"),
    (26, "unsuitable certificate purpose", "unsuitable certificate purpose"),
])
def test_an_untrusted_certificate_says_why_and_waits_for_the_operator(
        code: int, message: str, reason: str):
    """Retried, not dead-lettered: once trust is fixed, the email goes out."""
    failure = classify(certificate_error(code, message))
    assert failure.transient
    assert failure.reason == f"SMTP TLS certificate not trusted ({reason})"
