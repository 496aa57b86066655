"""A real headless Chromium (Debian's package) against the whole stack on loopback.

One browser and one stack (Redis server, Celery worker, aiosmtpd, the app on werkzeug) serve
the whole browser session; each test gets fresh browser contexts and its own accounts.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu.pools
import pytest
from browser_kit import AXE_RUNS, ROOT, SCREENSHOTS, Look, Stack
from flask import Flask, Response, abort
from support.live_server import LiveServer
from support.mailbox import SmtpServer
from support.processes import RedisServer, WorkerProcess

from scripts.embedded_redis import free_port
from shared.config import Settings
from shared.database import db
from web import create_app

DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# The README shows these; `UPDATE_DOCS_SCREENSHOTS=1` copies them there after a run.
README_SCREENSHOTS = [
    "login-desktop", "reset-request-desktop", "check-your-email-desktop", "email-desktop",
    "set-new-password-desktop", "link-invalid-desktop", "reset-request-phone", "email-phone",
    "set-new-password-errors-phone",
]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# What a strict deployment sends: only the site's own files, nothing inline. Added on top of
# whatever policy the app sets itself (a browser enforces every policy it receives).
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where it can)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def add_failure_routes(app: Flask) -> None:
    """Two routes that fail on purpose, so the 500 and 429 pages can be seen in the browser."""

    @app.get("/_test/server-error")
    def server_error() -> Response:
        raise RuntimeError("a deliberate failure for the 500 page")

    @app.get("/_test/too-many-attempts")
    def too_many_attempts() -> Response:
        abort(429)


def add_strict_csp(app: Flask) -> None:
    @app.after_request
    def strict_csp(response: Response) -> Response:
        response.headers.add("Content-Security-Policy", STRICT_CSP)
        return response


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    redis_server = RedisServer().start()
    smtp_server = SmtpServer(free_port()).start()
    port = free_port()
    data_dir = tmp_path_factory.mktemp("browser")
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": "browser-secret-key-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{data_dir / 'browser.db'}",
        "REDIS_URL": redis_server.url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "SERVER_NAME": f"127.0.0.1:{port}",
        "PREFERRED_URL_SCHEME": "http",
        "TRUSTED_PROXIES": "0",
    }
    kombu.pools.reset()
    app: Flask = create_app(Settings.from_env(env))
    add_failure_routes(app)
    add_strict_csp(app)
    with app.app_context():
        db.create_all()
    worker = WorkerProcess(env).start()
    server = LiveServer(app, port).start()
    yield Stack(server.url, app, smtp_server.mailbox)
    server.stop()
    worker.stop()
    smtp_server.stop()
    redis_server.stop()
    with app.app_context():
        db.engine.dispose()
    kombu.pools.reset()


@pytest.fixture(autouse=True)
def fresh_rate_limits(request: pytest.FixtureRequest) -> None:
    """Each test starts with the request budget of a new visitor, as its own browser would.

    All tests come from 127.0.0.1 to one long-lived app; without this, rate limits (when the
    app has them) would count one test's requests against the next.
    """
    if "live_stack" not in request.fixturenames:
        return
    stack: Stack = request.getfixturevalue("live_stack")
    for limiter in stack.app.extensions.get("limiter", set()):  # Flask-Limiter's registry
        limiter.reset()


@pytest.fixture(scope="session")
def screenshot_dir() -> Iterator[Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield SCREENSHOTS
    if AXE_RUNS:
        (SCREENSHOTS / "axe-results.json").write_text(json.dumps(AXE_RUNS, indent=1))
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in README_SCREENSHOTS:
            source = SCREENSHOTS / f"{name}.png"
            if source.exists():
                shutil.copyfile(source, DOCS_SCREENSHOTS / source.name)


@pytest.fixture(scope="session")
def context_for(chromium) -> Iterator[Callable[[Look, bool], object]]:
    """One browser context per look, reused: opening one costs more than a whole page check."""
    contexts: dict[tuple[Look, bool], object] = {}

    def context(look: Look, block_css: bool = False):
        if (look, block_css) not in contexts:
            new = chromium.new_context(**look.context_options())
            new.set_default_timeout(10_000)
            if block_css:
                new.route("**/*.css", lambda route: route.abort())
            contexts[look, block_css] = new
        return contexts[look, block_css]

    yield context
    for each in contexts.values():
        each.close()


@pytest.fixture
def open_page(context_for, screenshot_dir: Path) -> Iterator[Callable[..., object]]:
    """A new page for one `Look`, with no cookies: what a first-time visitor sees.

    `block_css` refuses every stylesheet, to read the page as a browser without CSS would.
    """
    pages = []

    def open_(look: Look, block_css: bool = False):
        context = context_for(look, block_css)
        context.clear_cookies()
        page = context.new_page()
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
