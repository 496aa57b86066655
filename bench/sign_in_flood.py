"""What a flood of sign-ins for made-up names does to everyone else's pages.

    .venv/bin/python -m bench.sign_in_flood [--seconds 15] [--flooders 4]

Starts gunicorn (2 workers, SQLite, limits counted in each worker's memory) on a free
loopback port, twice: with the sign-in limits on and off. Each time it measures `GET /`
alone, then again while `--flooders` threads POST /login for unknown names from one address
(with a CSRF token, as a browser would), and prints the medians and how the flood was
answered. Bounded: every loop stops after `--seconds`, and only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, cookie: str = "") -> tuple[int, bytes, str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    set_cookie = response.getheader("Set-Cookie") or ""
    connection.close()
    return response.status, body, set_cookie.split(";", 1)[0], elapsed


def median_page_ms(port: int, seconds: float) -> float:
    """The median time of GET / over `seconds`, a request every 50 ms."""
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(get(port, "/")[3])
        time.sleep(0.05)
    return statistics.median(times) * 1000


def flood(port: int, deadline: float, answers: Counter[int]) -> None:
    _, body, cookie, _ = get(port, "/login")
    match = CSRF.search(body)
    assert match, "no CSRF token on /login"
    while time.monotonic() < deadline:
        form = urlencode({"csrf_token": match.group(1).decode(),
                          "username": "nobody-" + secrets.token_hex(4), "password": "a guess"})
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
            "Referer": f"http://127.0.0.1:{port}/login"})
        response = connection.getresponse()
        response.read()
        answers[response.status] += 1
        connection.close()


def run(limits_on: bool, seconds: float, flooders: int, workdir: Path) -> None:
    port = free_port()
    env = {**os.environ, "APP_ENV": "development", "SECRET_KEY": "bench-" + "k" * 40,
           "DATABASE_URL": f"sqlite:///{workdir / 'flood.db'}",
           "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing is published: sign-ins only
           "RATELIMIT_ENABLED": str(limits_on).lower(), "RATELIMIT_STORAGE_URI": "memory://"}
    subprocess.run([sys.executable, "-c", "from web import create_app\nfrom shared.database import"
                    " db\napp = create_app()\nwith app.app_context(): db.create_all()"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "web.wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        for _ in range(100):
            try:
                get(port, "/")
                break
            except OSError:
                time.sleep(0.2)
        quiet = median_page_ms(port, seconds / 3)
        answers: Counter[int] = Counter()
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=flood, args=(port, deadline, answers))
                   for _ in range(flooders)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        flooded = median_page_ms(port, deadline - time.monotonic() - 0.5)
        for thread in threads:
            thread.join()
        print(f"limits {'on ' if limits_on else 'off'}: GET / median {quiet:6.1f} ms alone, "
              f"{flooded:6.1f} ms during the flood; flood answered {dict(sorted(answers.items()))}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--flooders", type=int, default=4)
    args = parser.parse_args()
    for limits_on in (False, True):
        with tempfile.TemporaryDirectory() as directory:
            run(limits_on, args.seconds, args.flooders, Path(directory))


if __name__ == "__main__":
    main()
