"""gunicorn's access and error logs never hold a reset token: a real gunicorn on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.factories import make_user
from support.processes import ROOT
from support.reset_links import link_path, mint_token

from scripts.embedded_redis import free_port
from shared.config import Settings
from web import create_app

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, referer: str) -> int:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers={"Referer": referer}),
                         timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


# How each spelling of a reset link fares with gunicorn and werkzeug: 302 is the view taking
# the token (to the form), 308 werkzeug's slash-merging redirect, which still carries the
# token, 400 the view refusing a token with junk on it, 404 no route. Every one is redacted.
VARIANTS = {
    "/reset_password/{t}": "302",
    "/reset_password%2F{t}": "302",
    "/reset_password%2f{t}": "302",
    "//reset_password/{t}": "302",
    "/reset_p%61ssword/{t}": "302",
    "/reset_password/{t}?utm=x": "302",
    "/reset_password//{t}": "308",
    "//reset_password//{t}": "308",
    "/reset_password%2F%2F{t}": "308",
    "/reset_password/{t};a=b": "400",
    "/reset_password%252F{t}": "404",
    "/reset_password;a=b/{t}": "404",
    "/reset_password/{t}/": "404",
    "/reset_password%5C{t}": "404",
}


def raw_get(port: int, path: str) -> str:
    """The status line's code for a request line sent exactly as written."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                       "Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer.split(b" ", 2)[1].decode()


def test_gunicorn_logs_never_hold_the_token(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": "gunicorn-log-test-secret-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'access.db'}",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "RATELIMIT_STORAGE_URI": "memory://",
        "SERVER_NAME": f"127.0.0.1:{port}",
        "PREFERRED_URL_SCHEME": "http",
        "TRUSTED_PROXIES": "0",
        "RATELIMIT_ENABLED": "false",
    }
    subprocess.run([str(BIN / "flask"), "--app", "web.wsgi", "db", "upgrade"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    app = create_app(Settings.from_env(env))
    user = make_user(app)
    token = mint_token(app, user.id)

    access_log, error_log = tmp_path / "access.log", tmp_path / "error.log"
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--access-logfile", str(access_log), "--error-logfile", str(error_log),
         "web.wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                fetch(base + "/login", base)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert fetch(base + link_path(token), referer=base + link_path(token)) == 302
        assert fetch(base + link_path(token) + "?utm=x", referer=base) == 302
        assert fetch(base + "/reset_password/garbage-token-value", referer=base) == 400
        answers = {variant: raw_get(port, variant.format(t=token)) for variant in VARIANTS}
        assert answers == VARIANTS
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)

    access = access_log.read_text()
    assert access.count("/reset_password/[redacted]") >= 4  # request lines and the Referer
    assert access.count("[redacted]") >= 4 + len(VARIANTS)
    assert token not in access and "garbage-token-value" not in access
    assert token not in error_log.read_text()
