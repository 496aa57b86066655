"""The whole reset, across real processes: HTTP -> Redis -> celery worker -> SMTP -> link."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from flask import Flask
from support.forms import submit
from support.mailbox import SmtpServer
from support.processes import WorkerProcess

pytestmark = pytest.mark.integration

OLD, NEW = "first passphrase", "second passphrase"


def test_a_user_resets_a_forgotten_password(web_app: Flask, worker: WorkerProcess,
                                            smtp_server: SmtpServer):
    client = web_app.test_client()
    submit(client, "/register", {"username": "susan", "email": "susan@example.com",
                                 "password": OLD, "password2": OLD})

    response = submit(client, "/reset_password_request", {"email": "susan@example.com"})
    assert response.status_code == 302
    assert b"Check your email" in client.get(response.headers["Location"]).data

    [received] = smtp_server.mailbox.wait_for(1)
    assert received.envelope_to == ["susan@example.com"]
    assert received.message["Subject"] == "[Microblog] Reset Your Password"
    assert received.message.is_multipart()
    assert received.html and received.text
    link = urlsplit(received.reset_link)
    assert (link.scheme, link.netloc) == ("https", "microblog.example.test")
    assert received.reset_link in received.html

    response = submit(client, link.path, {"password": NEW, "password2": NEW})
    assert response.headers["Location"] == "/login"
    assert b"Your password has been reset." in client.get("/login").data

    refused = submit(client, "/login", {"username": "susan", "password": OLD})
    assert refused.headers["Location"] == "/login"
    accepted = submit(client, "/login", {"username": "susan", "password": NEW})
    assert accepted.headers["Location"] == "/index"
    submit(client, "/logout", {})
    assert client.get(link.path).status_code == 400  # the link worked once


def test_unknown_address_is_answered_alike_and_no_email_is_sent(
        web_app: Flask, worker: WorkerProcess, smtp_server: SmtpServer):
    client = web_app.test_client()
    submit(client, "/register", {"username": "susan", "email": "susan@example.com",
                                 "password": OLD, "password2": OLD})
    unknown = submit(client, "/reset_password_request", {"email": "nobody@example.com"})
    known = submit(client, "/reset_password_request", {"email": "susan@example.com"})
    assert unknown.status_code == known.status_code == 302
    smtp_server.mailbox.wait_for(1)
    assert smtp_server.mailbox.to("nobody@example.com") == []
    assert len(smtp_server.mailbox.received) == 1


def test_health_check_sees_the_real_broker(web_app: Flask, worker: WorkerProcess):
    response = web_app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert (body["status"], body["database"], body["broker"]) == ("ok", "ok", "ok")
    assert body["email_queue_length"] == 0
    assert body["outbox"]["status"] == "ok"


def test_the_worker_logs_one_line_per_delivery(web_app: Flask, worker: WorkerProcess,
                                               smtp_server: SmtpServer):
    """The delivery event says it all; Celery's own per-task INFO lines are not repeated."""
    client = web_app.test_client()
    submit(client, "/register", {"username": "susan", "email": "susan@example.com",
                                 "password": OLD, "password2": OLD})
    submit(client, "/reset_password_request", {"email": "susan@example.com"})
    smtp_server.mailbox.wait_for(1)
    deadline = time.monotonic() + 10
    while "event=delivery.sent" not in worker.log and time.monotonic() < deadline:
        time.sleep(0.05)
    [sent] = [line for line in worker.log.splitlines() if "event=delivery.sent" in line]
    assert "to=s***@example.com" in sent and "attempt=1" in sent
    assert "email.send_password_reset[" not in worker.log  # "Task …[id] received/succeeded"
    assert "susan@example.com" not in worker.log
