"""Send a Flask-Mail message over one SMTP connection kept open per worker process.

Flask-Mail opens a connection per message, sets no socket timeout and ignores a partial
recipient refusal; this keeps its message building, settings and `email_dispatched`
signal (so `record_messages` works in tests) and adds the three.
"""

from __future__ import annotations

import smtplib
import time
from email import policy
from email.policy import Compat32
from typing import Any

from flask import current_app
from flask_mail import Message, email_dispatched, sanitize_address, sanitize_addresses

_connection: smtplib.SMTP | None = None


class _WirePolicy(Compat32):
    """Flask-Mail's wire format (`policy.SMTP`) at half the cost.

    Flask-Mail builds its MIME tree with compat32 and then flattens it under
    `policy.SMTP`, whose every header *read* (the generator asks each part for its
    content type, boundary and charset) parses the value through the header registry.
    This policy reads headers as compat32 does, raw, and writes them exactly as
    `policy.SMTP` does, so the bytes are the same.
    """

    def fold(self, name: str, value: Any) -> str:
        return policy.SMTP.fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        return policy.SMTP.fold_binary(name, value)


WIRE_POLICY = _WirePolicy(linesep="\r\n", mangle_from_=False)


def forget_connection() -> None:
    """Drop the parent's connection after fork without closing the shared socket."""
    global _connection
    _connection = None


def close_connection() -> None:
    global _connection
    if _connection is not None:
        try:
            _connection.quit()
        except (smtplib.SMTPException, OSError):
            pass
    _connection = None


def _open() -> smtplib.SMTP:
    state = current_app.extensions["mail"]
    timeout = current_app.config["SETTINGS"].smtp_timeout_seconds
    host: smtplib.SMTP
    if state.use_ssl:
        host = smtplib.SMTP_SSL(state.server, state.port, timeout=timeout)
    else:
        host = smtplib.SMTP(state.server, state.port, timeout=timeout)
    if state.use_tls:
        host.starttls()
    if state.username and state.password:
        host.login(state.username, state.password)
    return host


def wire_bytes(message: Message) -> bytes:
    """The message as it goes to the SMTP server."""
    return message._message().as_bytes(policy=WIRE_POLICY)


def _sendmail(host: smtplib.SMTP, message: Message) -> None:
    refused = host.sendmail(
        sanitize_address(message.sender),
        list(sanitize_addresses(message.send_to)),
        wire_bytes(message),
        message.mail_options,
        message.rcpt_options,
    )
    if refused:
        # Some recipients accepted, some not: that is not a success for the refused ones.
        raise smtplib.SMTPRecipientsRefused(refused)


def send(message: Message) -> None:
    """Send, reusing this process's connection; reopen once if the server had closed it.

    Reopening is safe: a server that dropped an idle connection had not yet been handed
    this message, since acceptance only happens at the reply to the final DATA.
    """
    global _connection
    if message.date is None:
        message.date = time.time()
    if not current_app.extensions["mail"].suppress:
        reused = _connection is not None
        if _connection is None:
            _connection = _open()
        try:
            _sendmail(_connection, message)
        except smtplib.SMTPServerDisconnected:
            _connection = None
            if not reused:
                raise
            _connection = _open()
            _sendmail(_connection, message)
        except (smtplib.SMTPException, OSError):
            # After an error the session state is unknown: start clean next time.
            close_connection()
            raise
    email_dispatched.send(current_app._get_current_object(), message=message)  # type: ignore[attr-defined]
