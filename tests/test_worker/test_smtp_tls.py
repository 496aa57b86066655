"""TLS to the SMTP relay, against a real aiosmtpd server speaking STARTTLS or implicit TLS.

The relay must prove who it is before it gets the relay password or a reset link:
certificate chain and MAIL_SERVER's name are checked, a private CA is trusted only when
MAIL_CA_FILE (or the system store, via SSL_CERT_FILE) says so, and AUTH never goes in
clear unless MAIL_ALLOW_PLAINTEXT_AUTH allows it.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask_mail import Message
from support.mailbox import SmtpServer
from support.silent_smtp import SilentServer
from support.tls import PrivateCA

from scripts.embedded_redis import free_port
from shared.clock import utcnow
from shared.config import ConfigError, Settings
from shared.models import DeliveryStatus, User
from worker import smtp, smtp_probe
from worker.app import create_worker_app
from worker.delivery import deliver
from worker.smtp_errors import InsecureConnection, classify

pytestmark = pytest.mark.integration

USER, PASSWORD = "relay-user", "relay-password-do-not-log"
AFTER_TLS = {"AUTH", "MAIL", "RCPT", "DATA"}


@pytest.fixture(autouse=True)
def fresh_connection_and_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test builds its own context from its own environment."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    smtp.forget_connection()
    smtp.tls_context.cache_clear()
    yield
    smtp.close_connection()
    smtp.tls_context.cache_clear()


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCA:
    return PrivateCA(tmp_path / "pki")


@pytest.fixture(params=["starttls", "implicit"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def relay(mode: str) -> Iterator[Callable[[ssl.SSLContext], SmtpServer]]:
    """Start the relay in this test's TLS mode with the given server context."""
    started: list[SmtpServer] = []

    def start(context: ssl.SSLContext) -> SmtpServer:
        tls = {"starttls": context} if mode == "starttls" else {"implicit_tls": context}
        server = SmtpServer(free_port(), **tls).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        stop(server)


def stop(server: SmtpServer) -> None:
    """Say goodbye first: a server stopped under an open TLS connection leaks its socket."""
    smtp.close_connection()
    server.stop()


def tls_settings(settings: Settings, mode: str, server: SmtpServer, **changes: object) -> Settings:
    return settings.with_overrides(
        mail_port=server.port, mail_use_tls=mode == "starttls", mail_use_ssl=mode == "implicit",
        mail_username=USER, mail_password=PASSWORD, smtp_timeout_seconds=5.0, **changes)


def message() -> Message:
    return Message(subject="Reset", recipients=["susan@example.com"], body="the link",
                   sender="Microblog <no-reply@example.test>")


def send_with(settings: Settings) -> Flask:
    app = create_worker_app(settings)
    with app.app_context():
        smtp.send(message())
    return app


def assert_nothing_reached(server: SmtpServer) -> None:
    assert server.mailbox.logins == []
    assert AFTER_TLS.isdisjoint(server.mailbox.heard())
    assert server.mailbox.received == []


def assert_delivered_after_tls(server: SmtpServer, mode: str) -> None:
    [received] = server.mailbox.wait_for(1)
    assert received.envelope_to == ["susan@example.com"]
    assert server.mailbox.logins == [USER]
    heard = server.mailbox.heard()
    if mode == "starttls":  # nothing but the greeting and STARTTLS went in clear
        assert heard[:3] == ["EHLO", "STARTTLS", "EHLO"]


# --- refused: the relay cannot prove who it is ---------------------------------------


@pytest.mark.parametrize("presented, problem", [
    ("another CA", "unknown issuer"),
    ("self-signed", "self-signed certificate"),
])
def test_an_untrusted_relay_gets_no_password_and_no_email(
        settings: Settings, ca: PrivateCA, tmp_path: Path, mode: str, relay, presented: str,
        problem: str, caplog: pytest.LogCaptureFixture):
    stranger = PrivateCA(tmp_path / "stranger")
    context = (stranger.server_context() if presented == "another CA"
               else stranger.self_signed_context())
    server = relay(context)
    caplog.set_level(logging.INFO, logger="worker.smtp")

    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        send_with(tls_settings(settings, mode, server, mail_ca_file=str(ca.ca_file)))

    assert_nothing_reached(server)
    failure = classify(refused.value)
    assert failure.transient  # the row waits in `retrying` until the operator fixes trust
    assert failure.reason == f"SMTP TLS certificate not trusted ({problem})"
    [line] = [r for r in caplog.records if r.name == "worker.smtp"]
    assert line.levelno == logging.ERROR
    assert failure.reason in line.getMessage()
    assert PASSWORD not in caplog.text and USER not in caplog.text


@pytest.mark.parametrize("mail_server, problem", [
    ("localhost", "host name mismatch"),
    ("127.0.0.1", "IP address mismatch"),
])
def test_a_trusted_ca_certificate_for_another_host_is_refused(
        settings: Settings, ca: PrivateCA, mode: str, relay, mail_server: str, problem: str):
    server = relay(ca.server_context("mail.other.test"))
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        send_with(tls_settings(settings, mode, server, mail_server=mail_server,
                               mail_ca_file=str(ca.ca_file)))
    assert_nothing_reached(server)
    assert classify(refused.value).reason == f"SMTP TLS certificate not trusted ({problem})"


def test_starttls_not_offered_is_not_a_fallback_to_clear_text(
        settings: Settings, caplog: pytest.LogCaptureFixture):
    plain = SmtpServer(free_port()).start()  # offers no STARTTLS at all
    try:
        with pytest.raises(InsecureConnection) as refused:
            send_with(tls_settings(settings, "starttls", plain))
    finally:
        stop(plain)
    assert plain.mailbox.heard() == ["EHLO"]
    assert_nothing_reached(plain)
    failure = classify(refused.value)
    assert failure.transient and "does not offer STARTTLS" in failure.reason
    [line] = [r for r in caplog.records if r.name == "worker.smtp"]
    assert line.levelno == logging.ERROR and failure.reason in line.getMessage()


def test_a_reset_waits_for_trust_and_goes_out_once_the_operator_gives_it(
        settings: Settings, user: User, outbox, ca: PrivateCA, mode: str, relay):
    server = relay(ca.server_context())
    delivery_id = outbox.add()
    reason = "SMTP TLS certificate not trusted (unknown issuer)"

    with create_worker_app(tls_settings(settings, mode, server)).app_context():
        outcome = deliver(delivery_id)
    assert (outcome.status, outcome.reason) == (DeliveryStatus.RETRYING.value, reason)
    row = outbox.get(delivery_id)
    assert (row.status, row.last_error) == (DeliveryStatus.RETRYING, reason)
    assert_nothing_reached(server)

    # The operator sets MAIL_CA_FILE and restarts the worker; the retry comes due.
    smtp.tls_context.cache_clear()
    fixed = tls_settings(settings, mode, server, mail_ca_file=str(ca.ca_file))
    outbox.update(delivery_id, next_attempt_at=utcnow() - timedelta(seconds=1))
    with create_worker_app(fixed).app_context():
        assert deliver(delivery_id).status == DeliveryStatus.SENT.value
    assert server.mailbox.wait_for(1)[0].envelope_to == ["susan@example.com"]
    assert outbox.get(delivery_id).status == DeliveryStatus.SENT


# --- delivered: trust comes from MAIL_CA_FILE or the system store ---------------------


def test_a_private_ca_named_by_mail_ca_file_is_trusted(
        settings: Settings, ca: PrivateCA, mode: str, relay):
    server = relay(ca.server_context())
    send_with(tls_settings(settings, mode, server, mail_ca_file=str(ca.ca_file)))
    assert_delivered_after_tls(server, mode)


def test_the_system_store_moved_by_ssl_cert_file_is_trusted(
        settings: Settings, ca: PrivateCA, mode: str, relay, monkeypatch: pytest.MonkeyPatch):
    """OpenSSL reads SSL_CERT_FILE when the context is built: once, in a fresh process."""
    server = relay(ca.server_context())
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_file))
    send_with(tls_settings(settings, mode, server, mail_server="localhost"))
    assert_delivered_after_tls(server, mode)


def test_one_context_serves_the_whole_process(settings: Settings, ca: PrivateCA, mode: str,
                                              relay):
    server = relay(ca.server_context())
    configured = tls_settings(settings, mode, server, mail_ca_file=str(ca.ca_file))
    app = send_with(configured)
    first = smtp.tls_context(configured.mail_ca_file)
    smtp.close_connection()  # the next send opens a new connection ...
    with app.app_context():
        smtp.send(message())
    assert smtp.tls_context(configured.mail_ca_file) is first  # ... with the same context
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname


# --- AUTH in clear, and bad settings, refused at start --------------------------------


def test_a_relay_password_without_tls_stops_the_worker_at_start(settings: Settings):
    with pytest.raises(ConfigError, match="MAIL_ALLOW_PLAINTEXT_AUTH=true"):
        create_worker_app(settings.with_overrides(mail_username=USER, mail_password=PASSWORD))


def test_auth_in_clear_when_the_operator_allows_it(settings: Settings):
    plain = SmtpServer(free_port()).start()
    try:
        send_with(settings.with_overrides(mail_port=plain.port, mail_username=USER,
                                          mail_password=PASSWORD,
                                          mail_allow_plaintext_auth=True))
    finally:
        stop(plain)
    assert plain.mailbox.logins == [USER]
    assert len(plain.mailbox.received) == 1


def test_auth_is_never_sent_in_clear_at_send_time_either(settings: Settings):
    """Settings that slipped past the start check still keep the password off the wire."""
    plain = SmtpServer(free_port()).start()
    allowed = settings.with_overrides(mail_port=plain.port, mail_username=USER,
                                      mail_password=PASSWORD, mail_allow_plaintext_auth=True)
    app = create_worker_app(allowed)
    app.config["SETTINGS"] = allowed.with_overrides(mail_allow_plaintext_auth=False)
    try:
        with app.app_context(), pytest.raises(InsecureConnection) as refused:
            smtp.send(message())
    finally:
        stop(plain)
    assert_nothing_reached(plain)
    assert classify(refused.value).transient


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_an_unreadable_mail_ca_file_stops_the_worker_at_start(
        settings: Settings, tmp_path: Path, content: bytes | None):
    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_bytes(content)
    with pytest.raises(ConfigError, match="MAIL_CA_FILE="):
        create_worker_app(settings.with_overrides(mail_use_tls=True,
                                                  mail_ca_file=str(ca_file)))


# --- the probe at worker start --------------------------------------------------------


def test_the_start_probe_reports_verified_tls_without_auth(
        settings: Settings, ca: PrivateCA, mode: str, relay):
    server = relay(ca.server_context())
    level, line = smtp_probe.probe(
        tls_settings(settings, mode, server, mail_ca_file=str(ca.ca_file)))
    assert level == logging.INFO
    assert f"result=ok tls={mode}" in line and "certificate=verified" in line
    assert server.mailbox.heard()[-1] == "QUIT"
    assert_nothing_reached(server)


def test_the_start_probe_reports_an_untrusted_certificate(
        settings: Settings, tmp_path: Path, mode: str, relay):
    server = relay(PrivateCA(tmp_path / "stranger").server_context())
    level, line = smtp_probe.probe(tls_settings(settings, mode, server))
    assert level == logging.ERROR
    assert 'reason="SMTP TLS certificate not trusted (unknown issuer)"' in line
    assert PASSWORD not in line
    assert_nothing_reached(server)


def test_the_start_probe_reports_an_unreachable_relay(settings: Settings):
    level, line = smtp_probe.probe(settings.with_overrides(mail_port=free_port()))
    assert level == logging.ERROR and "connection error" in line


def test_the_start_probe_never_holds_up_the_start(settings: Settings,
                                                  caplog: pytest.LogCaptureFixture):
    silent = SilentServer(free_port()).start()  # accepts, then never says a word
    caplog.set_level(logging.INFO, logger="worker.smtp")
    try:
        began = time.monotonic()
        thread = smtp_probe.start(settings.with_overrides(mail_port=silent.port,
                                                          smtp_timeout_seconds=1.0))
        assert time.monotonic() - began < 0.5
        thread.join(timeout=10)
    finally:
        silent.stop()
    assert not thread.is_alive()
    [line] = [r.getMessage() for r in caplog.records if r.name == "worker.smtp"]
    assert "result=failed" in line
