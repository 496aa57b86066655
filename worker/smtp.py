"""Send a Flask-Mail message over one SMTP connection kept open per worker process.

Flask-Mail opens a connection per message, sets no socket timeout and ignores a partial
recipient refusal; this keeps its message building, settings and `email_dispatched`
signal (so `record_messages` works in tests) and adds the three.

It also encrypts as an operator would expect: smtplib's `starttls()` and `SMTP_SSL`
without a context check neither the certificate nor the host name, so any server on the
path would receive the relay password and every reset link. Here both TLS modes verify
the chain and MAIL_SERVER's name, STARTTLS that the server does not offer is a failure
(not a fallback to plain text), and AUTH never goes over an unencrypted connection
unless MAIL_ALLOW_PLAINTEXT_AUTH says so.
"""

from __future__ import annotations

import functools
import logging
import smtplib
import ssl
import time
from email import policy
from email.policy import Compat32
from typing import Any

from flask import current_app
from flask_mail import Message, email_dispatched, sanitize_address, sanitize_addresses

from shared.config import Settings
from worker.smtp_errors import InsecureConnection, classify

log = logging.getLogger("worker.smtp")
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


@functools.cache
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The one client context of this process: certificate chain and host name checked.

    Trusted: the system store (which SSL_CERT_FILE / SSL_CERT_DIR may point elsewhere,
    read when the context is built) plus MAIL_CA_FILE's private CA. Built once per
    process, at its first TLS connection: loading the system store took 0.1-0.3 s on a
    busy two-core machine, too much to pay at every reconnect.
    """
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def is_encrypted(host: smtplib.SMTP) -> bool:
    return isinstance(host.sock, ssl.SSLSocket)


def connect(settings: Settings, timeout: float | None = None) -> smtplib.SMTP:
    """A greeted connection to MAIL_SERVER, encrypted and verified as configured; no AUTH."""
    timeout = settings.smtp_timeout_seconds if timeout is None else timeout
    server, port = settings.mail_server, settings.mail_port
    host: smtplib.SMTP
    if settings.mail_use_ssl:
        context = tls_context(settings.mail_ca_file)
        host = smtplib.SMTP_SSL(server, port, timeout=timeout, context=context)
    else:
        host = smtplib.SMTP(server, port, timeout=timeout)
    try:
        host.ehlo_or_helo_if_needed()
        if settings.mail_use_tls and not is_encrypted(host):
            if not host.has_extn("starttls"):
                raise InsecureConnection("SMTP server does not offer STARTTLS; "
                                         "not sending in clear")
            # smtplib checks the name against `_host`, MAIL_SERVER as given.
            host.starttls(context=tls_context(settings.mail_ca_file))
            host.ehlo()
    except BaseException:
        host.close()
        raise
    return host


def _open() -> smtplib.SMTP:
    settings: Settings = current_app.config["SETTINGS"]
    try:
        host = connect(settings)
    except (ssl.SSLError, InsecureConnection) as exc:
        _log_refusal(settings, exc)
        raise
    if settings.mail_username and settings.mail_password:
        if not is_encrypted(host) and not settings.mail_allow_plaintext_auth:
            host.close()
            refused = InsecureConnection("refusing SMTP AUTH over an unencrypted connection "
                                         "(MAIL_ALLOW_PLAINTEXT_AUTH is off)")
            _log_refusal(settings, refused)
            raise refused
        host.login(settings.mail_username, settings.mail_password.get_secret_value())
    return host


def _log_refusal(settings: Settings, exc: BaseException) -> None:
    """Loud, once per attempt: nothing was sent, and nothing will be until an operator
    fixes the trust or the settings (the email waits in the outbox meanwhile)."""
    log.error('event=smtp.tls_failed server=%s:%s reason="%s" (no AUTH, nothing sent)',
              settings.mail_server, settings.mail_port, classify(exc).reason)


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
