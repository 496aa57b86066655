"""The web tier keeps answering while clients hold connections open and send nothing.

gunicorn runs exactly as `make web` starts it (the Makefile's command, gunicorn.conf.py,
two workers, SQLite). Twenty connections are held open for the whole test, reopened when
gunicorn closes them; with sync workers the first request behind them waited 30 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support.http_client import HttpClient
from support.processes import MakeWebProcess
from support.slow_clients import IdleClients, timed

pytestmark = pytest.mark.integration

HELD = 20
# Generous for a loaded machine; a stalled worker takes gunicorn's whole timeout (30 s).
ANSWER_WITHIN = 2.0


@pytest.fixture(scope="module")
def make_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeWebProcess]:
    database = tmp_path_factory.mktemp("make-web") / "microblog.db"
    web = MakeWebProcess({
        "APP_ENV": "production",
        "SECRET_KEY": "slow-clients-test-secret-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "RATELIMIT_STORAGE_URI": "memory://",
        "TRUSTED_PROXIES": "0",  # reached directly, as these clients reach it
        "PREFERRED_URL_SCHEME": "http",
    })
    web.env["SERVER_NAME"] = f"127.0.0.1:{web.port}"
    web.start(timeout=120)
    yield web
    web.stop()


def answer_times(site: HttpClient, seconds: float) -> list[float]:
    """Ask for the sign-in page every 0.3 s; how long each answer took."""
    durations = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        elapsed, response = timed(lambda: site.get("/login", timeout=60))
        assert response.status == 200  # type: ignore[attr-defined]
        durations.append(elapsed)
        time.sleep(0.3)
    return durations


@pytest.mark.parametrize("dribble", [False, True], ids=["idle", "dribbling-headers"])
def test_the_site_answers_while_twenty_connections_are_held(make_web: MakeWebProcess,
                                                            dribble: bool):
    site = HttpClient(make_web.url)
    assert site.get("/login").status == 200

    held = IdleClients(("127.0.0.1", make_web.port), count=HELD, dribble=dribble)
    with held.held():
        # Longer than gunicorn's keepalive: the held connections are closed and reopened.
        durations = answer_times(site, seconds=8)

    print(f"{HELD} held connections ({'dribbling' if dribble else 'idle'}), "
          f"{held.reopened} reopened: {len(durations)} requests, "
          f"slowest {max(durations):.2f} s")
    assert max(durations) < ANSWER_WITHIN, durations
    assert make_web.alive, make_web.log[-2000:]
