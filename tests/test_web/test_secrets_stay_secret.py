"""No reset token, password or full email address in logs, in what Flower shows, or on pages.

The whole flow runs with every logger at DEBUG; then the captured log text, every message on
the broker (body and headers: `argsrepr`/`kwargsrepr` are what task events, and so Flower,
display) and every page are scanned. The servers' access logs get their own checks: the
link's first request reaches them before the app can redirect the token away.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.factories import PASSWORD
from support.live_server import LiveServer
from support.reset_links import link_path, mint_token

from scripts.embedded_redis import free_port
from shared.models import User
from web.log_redaction import redact
from worker.app import mail
from worker.tasks import send_password_reset

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"/reset_password/([A-Za-z0-9._\-]+)")


def broker_dump(broker: fakeredis.FakeRedis) -> str:
    dump = []
    for key in broker.keys("*"):
        kind = broker.type(key)
        if kind == b"list":
            dump += [raw.decode(errors="replace") for raw in broker.lrange(key, 0, -1)]
        elif kind == b"hash":
            dump += [str(broker.hgetall(key))]
        elif kind == b"string":
            dump += [str(broker.get(key))]
        dump.append(key.decode(errors="replace"))
    return "\n".join(dump)


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret[:12]}... leaked"


def test_the_whole_flow_leaves_no_secret_in_logs_or_on_the_broker(
        client: FlaskClient, app: Flask, worker_app: Flask, fake_broker, user: User, caplog):
    caplog.set_level(logging.DEBUG)
    pages = []
    pages.append(client.post("/reset_password_request", data={"email": "Susan@Example.com"}))
    pages.append(client.post("/reset_password_request", data={"email": "nobody@example.com"}))
    with app.app_context():
        from shared.database import db
        from shared.models import EmailDelivery

        ids = list(db.session.scalars(db.select(EmailDelivery.id)))
    with worker_app.app_context(), mail.record_messages() as outbox:
        for delivery_id in ids:
            send_password_reset.run(delivery_id)
    [email] = outbox
    token = LINK.search(email.body).group(1)

    pages.append(client.get(link_path(token)))
    pages.append(client.get("/reset_password"))
    pages.append(client.post("/reset_password",
                             data={"password": NEW_PASSWORD, "password2": NEW_PASSWORD}))
    pages.append(client.get(link_path(token)))  # spent: the refusal is logged
    pages.append(client.post(link_path(token), data={"password": "x", "password2": "x"}))
    pages.append(client.get(f"/reset_password/{token}/more"))  # 404
    pages.append(client.post("/login", data={"username": "susan", "password": NEW_PASSWORD}))

    secrets = [token, PASSWORD, NEW_PASSWORD, "susan@example.com", "Susan@Example.com",
               "nobody@example.com"]
    assert caplog.records, "nothing was logged: the scan would prove nothing"
    assert_clean(caplog.text, secrets)
    broker = broker_dump(fake_broker)
    assert "email.send_password_reset" in broker and "email.send_password_changed" in broker
    assert_clean(broker, secrets + ["susan", "nobody"])
    for page in pages:
        assert_clean(page.get_data(as_text=True), [token, PASSWORD, NEW_PASSWORD])


def test_an_unexpected_error_mentioning_secrets_shows_and_logs_none(app: Flask, caplog,
                                                                     monkeypatch):
    caplog.set_level(logging.DEBUG)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    secret = "eyJhbGciOiJIUzI1NiJ9.secret-token.sig susan@example.com hunter2-password"

    def boom(*args, **kwargs):
        raise RuntimeError(secret)

    monkeypatch.setattr("web.auth.routes.request_password_reset", boom)
    response = app.test_client().post("/reset_password_request",
                                      data={"email": "susan@example.com"})
    assert response.status_code == 500
    assert_clean(response.get_data(as_text=True), [secret, "hunter2-password"])
    assert "unhandled error: RuntimeError" in caplog.text
    assert_clean(caplog.text, ["secret-token", "susan@example.com", "hunter2-password"])


@pytest.mark.parametrize(("line", "expected"), [
    ('127.0.0.1 - - "GET /reset_password/eyJ.abc.def HTTP/1.1" 302 -',
     '127.0.0.1 - - "GET /reset_password/[redacted] HTTP/1.1" 302 -'),
    ('"GET /reset_password/eyJ.abc.def?x=1 HTTP/1.1" "https://h/reset_password/eyJ.q.r"',
     '"GET /reset_password/[redacted]?x=1 HTTP/1.1" "https://h/reset_password/[redacted]"'),
    ("GET /x?token=abc&password=hunter2&email=s%40e.com&ok=1",
     "GET /x?token=[redacted]&password=[redacted]&email=[redacted]&ok=1"),
    ("to susan.smith@example.com and s***@example.com",
     "to s***@example.com and s***@example.com"),
    ("GET /reset_password HTTP/1.1", "GET /reset_password HTTP/1.1"),
])
def test_redaction(line: str, expected: str):
    assert redact(line) == expected


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app, free_port()).start()
    yield server
    server.stop()


def test_werkzeug_access_log_never_holds_the_token(live_server: LiveServer, app: Flask,
                                                   user: User, caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    token = mint_token(app, user.id)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(live_server.url + link_path(token),
                                     headers={"Referer": live_server.url + link_path(token)})
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(request, timeout=5)
    assert answer.value.code == 302
    answer.value.close()
    access = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/reset_password/[redacted]" in line for line in access), access
    assert_clean("\n".join(access) + caplog.text, [token])
