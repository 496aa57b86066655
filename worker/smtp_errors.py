"""Which SMTP failures are worth retrying: decided here, and only here.

Transient: 4xx replies, disconnects, timeouts, refused connections, the task's soft time
limit. Permanent: 5xx replies, authentication failures, anything unexpected (a bug
will not fix itself by retrying; it goes to the dead letters, loudly).
"""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded


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


def classify(exc: BaseException) -> SendFailure:
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
