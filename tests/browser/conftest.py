"""A real headless Chromium (Debian's package) against the whole stack on loopback."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import kombu.pools
import pytest
from flask import Flask
from support.live_server import LiveServer
from support.mailbox import SmtpServer
from support.processes import RedisServer, WorkerProcess

from scripts.embedded_redis import free_port
from shared.config import Settings
from shared.database import db
from web import create_app

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "artifacts" / "screenshots"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


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


@pytest.fixture
def live_stack(tmp_path: Path) -> Iterator[tuple[LiveServer, SmtpServer]]:
    redis_server = RedisServer().start()
    smtp_server = SmtpServer(free_port()).start()
    port = free_port()
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": "browser-secret-key-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'browser.db'}",
        "REDIS_URL": redis_server.url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "SERVER_NAME": f"127.0.0.1:{port}",
        "PREFERRED_URL_SCHEME": "http",
    }
    kombu.pools.reset()
    app: Flask = create_app(Settings.from_env(env))
    with app.app_context():
        db.create_all()
    worker = WorkerProcess(env).start()
    server = LiveServer(app, port).start()
    yield server, smtp_server
    server.stop()
    worker.stop()
    smtp_server.stop()
    redis_server.stop()
    with app.app_context():
        db.engine.dispose()
    kombu.pools.reset()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
