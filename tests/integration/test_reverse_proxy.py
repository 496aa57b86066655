"""The shipped nginx config in front of gunicorn (TRUSTED_PROXIES=1), as compose runs them.

Real parts: Debian's nginx with deploy/nginx/microblog.conf (support/nginx.py rewrites only
ports and paths), a throwaway certificate from openssl, gunicorn with gunicorn.conf.py, a
Redis for the limits and the broker, SQLite. Visitors come from different loopback
addresses (127.0.0.2, 127.0.0.3), as visitors behind the proxy come from different hosts.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import bindparam, create_engine, text
from support.http_client import CSRF, HttpClient
from support.nginx import NginxServer, missing_programs
from support.processes import BIN, ROOT, RedisServer, WebProcess
from support.slow_clients import IdleClients, timed

pytestmark = pytest.mark.integration

HOST = "microblog.test"
PER_IP = 3  # reset requests per address in the window


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NginxServer, WebProcess]]:
    reason = missing_programs()
    if reason:
        print(f"SKIPPED reverse proxy tests: {reason}")
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("proxy")
    redis_server = RedisServer(data_dir=workdir / "redis").start()
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": "reverse-proxy-test-secret-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{workdir / 'microblog.db'}",
        "REDIS_URL": redis_server.url,
        "SERVER_NAME": HOST,
        "PREFERRED_URL_SCHEME": "https",
        "TRUSTED_PROXIES": "1",
        "RATELIMIT_RESET_REQUEST_PER_IP": f"{PER_IP} per 15 minutes",
    }
    web = WebProcess(env)
    subprocess.run([str(BIN / "flask"), "--app", "web.wsgi", "db", "upgrade"], cwd=ROOT,
                   env=web.env, check=True, capture_output=True)
    nginx = NginxServer(web.port, workdir / "nginx")
    try:
        web.start(timeout=120)
        nginx.start()
        visitor(nginx, "127.0.0.1").get("/login", timeout=120)  # the workers have booted
        yield nginx, web
    finally:
        nginx.stop()
        web.stop()
        redis_server.stop()
    print(f"nginx access log:\n{nginx.access_log[-1500:]}")


def visitor(nginx: NginxServer, source: str) -> HttpClient:
    tls = ssl.create_default_context(cafile=str(nginx.certificate))
    return HttpClient(f"https://127.0.0.1:{nginx.https_port}", host=HOST, source=source,
                      tls=tls)


def statuses(web: WebProcess, emails: list[str]) -> list[str]:
    engine = create_engine(web.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            query = text("SELECT email, status FROM email_delivery WHERE email IN :emails")
            rows = connection.execute(
                query.bindparams(bindparam("emails", value=emails, expanding=True)))
            found = {row.email: row.status for row in rows}
    finally:
        engine.dispose()
    return [found.get(email, "missing") for email in emails]


def ask_for_resets(site: HttpClient, emails: list[str]) -> None:
    for email in emails:
        form = site.get("/reset_password_request")
        assert form.status == 200, form.status
        response = site.submit("/reset_password_request", {"email": email})
        assert response.status == 302, (response.status, flashed(response.text))


def flashed(page: str) -> list[str]:
    return re.findall(r'class="(?:flash|error|alert)[^"]*"[^>]*>([^<]+)', page)


def test_each_visitor_has_a_reset_limit_of_its_own(proxied: tuple[NginxServer, WebProcess]):
    nginx, web = proxied
    junk = [f"junk{n}@example.com" for n in range(PER_IP + 2)]
    ask_for_resets(visitor(nginx, "127.0.0.2"), junk)
    assert statuses(web, junk)[-1] == "throttled"  # that visitor is over its limit

    susan = ["susan@example.com"]
    ask_for_resets(visitor(nginx, "127.0.0.3"), susan)

    assert statuses(web, junk) == ["queued"] * PER_IP + ["throttled"] * 2
    assert statuses(web, susan) == ["queued"]


def test_a_forged_forwarded_for_does_not_buy_a_fresh_limit(
        proxied: tuple[NginxServer, WebProcess]):
    nginx, web = proxied
    site = visitor(nginx, "127.0.0.4")
    first = [f"forger{n}@example.com" for n in range(PER_IP)]
    ask_for_resets(site, first)
    forged = ["forged@example.com"]
    page = site.get("/reset_password_request")
    assert page.status == 200
    site.request("POST", "/reset_password_request",
                 data={"email": forged[0], "csrf_token": CSRF.search(page.text).group(1)},
                 headers={"X-Forwarded-For": "198.51.100.7",
                          "Referer": f"https://{HOST}/reset_password_request"})
    assert statuses(web, first + forged) == ["queued"] * PER_IP + ["throttled"]


def test_plain_http_is_sent_to_https(proxied: tuple[NginxServer, WebProcess]):
    nginx, _ = proxied
    plain = HttpClient(f"http://127.0.0.1:{nginx.http_port}", host=HOST)
    response = plain.get("/reset_password_request?x=1")
    assert response.status == 301
    assert response.headers["Location"] == f"https://{HOST}/reset_password_request?x=1"
    assert plain.get("/proxy-health").text == "ok\n"  # the container's healthcheck


def test_idle_connections_to_nginx_do_not_slow_anyone(proxied: tuple[NginxServer, WebProcess]):
    nginx, _ = proxied
    site = visitor(nginx, "127.0.0.5")
    held = IdleClients(("127.0.0.1", nginx.https_port), count=20, source="127.0.0.6")
    with held.held():
        durations = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            elapsed, response = timed(lambda: site.get("/login", timeout=60))
            assert response.status == 200  # type: ignore[attr-defined]
            durations.append(elapsed)
            time.sleep(0.3)
    print(f"20 idle connections to nginx: {len(durations)} requests, "
          f"slowest {max(durations):.2f} s")
    assert max(durations) < 2.0, durations


def test_the_proxy_logs_no_token_however_the_link_is_spelled(
        proxied: tuple[NginxServer, WebProcess]):
    nginx, web = proxied
    site = visitor(nginx, "127.0.0.7")
    token = "not-a-real-token-but-secret-all-the-same"
    for path in (f"/reset_password/{token}", f"/reset_password%2F{token}",
                 f"//reset_password//{token}", f"/reset_p%61ssword/{token}?utm=x"):
        assert site.get(path, headers={"Referer": f"https://{HOST}{path}"}).status in {
            308, 400}
    time.sleep(0.5)  # nginx writes its access log line after the response
    assert "/reset_password/[redacted]" in nginx.access_log
    assert token not in nginx.access_log + nginx.error_log
    assert token not in web.log
