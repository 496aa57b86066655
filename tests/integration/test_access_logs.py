"""gunicorn's access and error logs never hold a reset token: a real gunicorn on loopback."""

from __future__ import annotations

import os
import signal
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
    }
    subprocess.run([str(BIN / "flask"), "--app", "web.wsgi", "db", "upgrade"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    app = create_app(Settings.from_env(env))
    user = make_user(app)
    token = mint_token(app, user.id)

    access_log, error_log = tmp_path / "access.log", tmp_path / "error.log"
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
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
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)

    access = access_log.read_text()
    assert access.count("/reset_password/[redacted]") >= 4  # request lines and the Referer
    assert token not in access and "garbage-token-value" not in access
    assert token not in error_log.read_text()
