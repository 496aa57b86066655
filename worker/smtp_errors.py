"""Which SMTP failures are worth retrying: decided here, and only here.

Transient: 4xx replies, disconnects, timeouts, refused connections, the task's soft time
limit. Permanent: 5xx replies, authentication failures, anything unexpected (a bug
will not fix itself by retrying; it goes to the dead letters, loudly).

A connection that cannot be secured (certificate not trusted, TLS failed,
STARTTLS not offered, AUTH that would go in clear) is transient too: nothing was sent,
and once an operator fixes the trust or the settings the email goes out. Each such
attempt is logged at ERROR by worker/smtp.py.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded


class InsecureConnection(smtplib.SMTPException):
    """The connection is not as encrypted as the settings demand: nothing was sent on it."""


# OpenSSL's verify codes an operator meets most, in words; others keep OpenSSL's message.
CERTIFICATE_PROBLEMS = {
    2: "unknown issuer",
    10: "certificate expired",
    18: "self-signed certificate",
    19: "self-signed certificate in chain",
    20: "unknown issuer",
    62: "host name mismatch",
    64: "IP address mismatch",
}


@dataclass(frozen=True)
class SendFailure:
    transient: bool
    reason: str


# Servers often echo the recipient ("550 <susan@example.com>: no such user"); the reason
# ends up in logs and in Flower, so addresses in it are masked.
ADDRESS = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return ADDRESS.sub(r"\1***@\2", f"{code} {text}".strip())[:300]


def _tls_failure(exc: ssl.SSLError) -> SendFailure:
    if isinstance(exc, ssl.SSLCertVerificationError):
        problem = (CERTIFICATE_PROBLEMS.get(getattr(exc, "verify_code", 0))
                   or str(getattr(exc, "verify_message", None) or "verification failed"))
        return SendFailure(True, f"SMTP TLS certificate not trusted ({problem.rstrip('.')})")
    reason = getattr(exc, "reason", None) or type(exc).__name__  # set only by OpenSSL
    return SendFailure(True, f"SMTP TLS failed ({reason})")


def classify(exc: BaseException) -> SendFailure:
    if isinstance(exc, ssl.SSLError):
        return _tls_failure(exc)
    if isinstance(exc, InsecureConnection):
        return SendFailure(True, str(exc))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SendFailure(False, "authentication failed: " + _reply(exc.smtp_code, exc.smtp_error))
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        replies = "; ".join(_reply(code, msg) for code, msg in exc.recipients.values())
        return SendFailure(all(400 <= c < 500 for c in codes), "recipient refused: " + replies)
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        return SendFailure(400 <= code < 500 or code < 0, _reply(code, exc.smtp_error))
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SendFailure(True, "server disconnected")
    if isinstance(exc, SoftTimeLimitExceeded):
        return SendFailure(True, "task time limit reached")
    if isinstance(exc, TimeoutError):
        return SendFailure(True, "timed out")
    if isinstance(exc, OSError):  # refused, reset, unreachable, DNS
        return SendFailure(True, f"connection error: {type(exc).__name__}")
    return SendFailure(False, f"unexpected error: {type(exc).__name__}")
