"""Sign-in latency at a password-hashing cost: POST /login through the Flask test client.

    PASSWORD_HASH_METHOD=argon2id:m=19456,t=2,p=1 .venv/bin/python -m bench.sign_in_latency

Times the whole request (form, database, hash, session) for a known name with the right
password, a known name with a wrong one and an unknown name, each in a fresh browser, and
prints the median and 90th percentile of `--runs` each, wall-clock and CPU time. Rate
limits are off: this measures the hashing cost, which the limits exist to ration. SQLite in
a temporary directory. It uses only what every version of the app has, so it also measures
an older checkout (PYTHONPATH=that checkout).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from flask import Flask

from shared.config import Settings
from shared.database import db
from shared.models import User
from web import create_app

PASSWORD = "correct horse battery"


def build(directory: Path) -> Flask:
    overrides = {"password_hash_method": os.environ["PASSWORD_HASH_METHOD"]} if (
        "PASSWORD_HASH_METHOD" in os.environ) else {}
    settings = Settings(env="testing", secret_key="bench-" + "k" * 40,
                        database_url=f"sqlite:///{directory / 'bench.db'}",
                        ratelimit_enabled=False, ratelimit_storage_uri="memory://", **overrides)
    app = create_app(settings)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
        user = User(username="susan", email="susan@example.com")
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    return app


def time_sign_ins(app: Flask, username: str, password: str, runs: int
                  ) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each request (CPU time is less swayed by a busy machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        client = app.test_client()
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.post("/login", data={"username": username, "password": password})
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        assert response.status_code == 302, response.status_code
    return wall, cpu


def summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    median, p90 = statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {median * 1000:6.1f} ms  p90 {p90 * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as directory:
        app = build(Path(directory))
        with app.app_context():
            stored = db.session.scalar(db.select(User.password_hash))
        print(f"hash: {stored.split('$')[0] or '$'.join(stored.split('$')[:4])}")
        time_sign_ins(app, "susan", PASSWORD, 3)  # warm up (and any upgrade of the hash)
        for label, username, password in [("right password", "susan", PASSWORD),
                                          ("wrong password", "susan", "a wrong guess"),
                                          ("unknown name", "nobody", "a wrong guess")]:
            wall, cpu = time_sign_ins(app, username, password, runs)
            print(f"{label:15} wall {summary(wall)}   cpu {summary(cpu)}   (n={runs})")
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
