"""A real worker process sends resets over STARTTLS to a relay with a private CA's certificate.

Trusted through MAIL_CA_FILE, the email goes out after AUTH over TLS. Presented by a
relay the worker cannot trust, nothing is sent (no AUTH, no MAIL FROM) and the row waits
in `retrying` with the reason, which the worker also logged at ERROR at start.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from support.faults import rows, wait_until
from support.forms import submit
from support.mailbox import SmtpServer
from support.processes import WorkerProcess
from support.tls import PrivateCA

from scripts.embedded_redis import free_port

pytestmark = pytest.mark.integration

USER, PASSWORD = "relay-user", "relay-password-do-not-log"
PASSPHRASE = "first passphrase"


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCA:
    return PrivateCA(tmp_path / "pki")


@pytest.fixture
def relay_certificate(request: pytest.FixtureRequest, ca: PrivateCA,
                      tmp_path: Path) -> ssl.SSLContext:
    """The private CA's certificate, or (`indirect` "impostor") one from a CA nobody trusts."""
    if getattr(request, "param", "private CA") == "impostor":
        return PrivateCA(tmp_path / "impostor").server_context()
    return ca.server_context()


@pytest.fixture
def smtp_server(relay_certificate: ssl.SSLContext) -> Iterator[SmtpServer]:
    """The relay of this module speaks STARTTLS, and nothing before it."""
    server = SmtpServer(free_port(), starttls=relay_certificate).start()
    yield server
    server.stop()


@pytest.fixture
def stack_env(stack_env: dict[str, str], ca: PrivateCA) -> dict[str, str]:
    """The production settings for a relay on port 587: STARTTLS, AUTH, a private CA."""
    return {**stack_env, "MAIL_USE_TLS": "true", "MAIL_USERNAME": USER,
            "MAIL_PASSWORD": PASSWORD, "MAIL_CA_FILE": str(ca.ca_file)}


def ask_for_a_reset(app: Flask) -> None:
    client = app.test_client()
    submit(client, "/register", {"username": "susan", "email": "susan@example.com",
                                 "password": PASSPHRASE, "password2": PASSPHRASE})
    assert submit(client, "/reset_password_request",
                  {"email": "susan@example.com"}).status_code == 302


def wait_for_line(worker: WorkerProcess, text: str, timeout: float = 20) -> str:
    wait_until(lambda: text in worker.log, timeout, f"worker log line with {text!r}")
    return next(line for line in worker.output if text in line)


def test_a_reset_goes_out_over_verified_starttls(web_app: Flask, worker: WorkerProcess,
                                                 smtp_server: SmtpServer):
    probe = wait_for_line(worker, "event=smtp.probe")
    ask_for_a_reset(web_app)
    [received] = smtp_server.mailbox.wait_for(1)
    assert "INFO" in probe and "result=ok tls=starttls" in probe
    assert "certificate=verified" in probe
    assert received.envelope_to == ["susan@example.com"]
    assert "/reset_password/" in received.reset_link
    assert smtp_server.mailbox.logins == [USER]  # the send logged in; the probe did not
    heard = smtp_server.mailbox.heard()
    assert heard[:2] == ["EHLO", "STARTTLS"] and heard.count("STARTTLS") == 2
    wait_until(lambda: [row.status for row in rows(web_app)] == ["sent"], 20,
               "the row recorded sent")


@pytest.mark.parametrize("relay_certificate", ["impostor"], indirect=True)
def test_an_untrusted_relay_gets_nothing_and_the_reset_waits(
        web_app: Flask, worker: WorkerProcess, smtp_server: SmtpServer):
    probe = wait_for_line(worker, "event=smtp.probe")
    ask_for_a_reset(web_app)
    wait_until(lambda: [r.status for r in rows(web_app)] == ["retrying"], 30,
               "the row waiting for a retry")
    failed = wait_for_line(worker, "event=smtp.tls_failed")
    reason = "SMTP TLS certificate not trusted (unknown issuer)"
    assert "ERROR" in probe and f'reason="{reason}"' in probe
    assert "ERROR" in failed and reason in failed
    [row] = rows(web_app)
    assert row.last_error == reason
    assert smtp_server.mailbox.logins == [] and smtp_server.mailbox.received == []
    assert {"AUTH", "MAIL", "RCPT", "DATA"}.isdisjoint(smtp_server.mailbox.heard())
    assert PASSWORD not in worker.log


def test_a_relay_password_without_tls_stops_the_worker_with_one_line(
        stack_env: dict[str, str]):
    env = {**stack_env, "MAIL_USE_TLS": "false"}
    worker = WorkerProcess(env)
    with pytest.raises(RuntimeError, match="did not become ready"):
        worker.start(timeout=60)
    [line] = [line for line in worker.output if line.strip()]
    assert line.startswith("microblog: configuration error: MAIL_USERNAME is set")
    assert "MAIL_ALLOW_PLAINTEXT_AUTH" in line and PASSWORD not in line
