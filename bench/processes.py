"""The servers a benchmark run starts and stops: Redis, `celery worker`, gunicorn.

Each is a separate OS process on loopback, started the way an operator starts it, with its
output in a log file under the run's directory (a pipe would need a reader in this process,
which would then compete with the measurements for the GIL).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import redis
from celery import Celery

from bench import procfs
from scripts.embedded_redis import redis_command

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **extra, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ManagedProcess:
    """A child in its own process group, so stopping it reaches every prefork child."""

    process: subprocess.Popen[bytes] | None = None
    log_path: Path

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _spawn(self, command: list[str], env: Mapping[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=_env(env), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _check_alive(self, what: str) -> None:
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            raise RuntimeError(f"{what} exited ({code}):\n{_tail(self.log_path)}")

    stop_signal = signal.SIGTERM

    def stop(self, timeout: float = 20) -> None:
        """Signal the leader (which stops its own children), SIGKILL the group if stuck."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Still running, so the group is still ours: end the leader and its children.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def rss(self) -> dict[str, float]:
        return procfs.tree_rss(self.pid)

    def cpu_seconds(self) -> float:
        return procfs.tree_cpu_seconds(self.pid)


class RedisProcess(ManagedProcess):
    def __init__(self, port: int, data_dir: Path) -> None:
        self.port, self.data_dir = port, data_dir
        self.log_path = data_dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> RedisProcess:
        self._spawn(redis_command(self.port, self.data_dir), {})
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("redis-server")
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")


class CeleryWorker(ManagedProcess):
    """`celery -A <app> worker -Q <queue>`; paused and resumed through Celery's remote control.

    Stopped with SIGQUIT (Celery's cold shutdown): the benchmark stops a worker only once
    its queue is drained or purged, and a warm shutdown would add seconds per stop.
    """

    stop_signal = signal.SIGQUIT

    def __init__(self, app_path: str, queue: str, env: Mapping[str, str], log_path: Path,
                 pool: str = "prefork", concurrency: int | None = None,
                 loglevel: str = "INFO") -> None:
        self.app_path, self.queue, self.env = app_path, queue, dict(env)
        self.log_path = log_path
        self.pool, self.concurrency, self.loglevel = pool, concurrency, loglevel
        self.nodename = f"bench-{queue}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"

    def start(self, control_app: Celery, timeout: float = 90) -> CeleryWorker:
        """Start; return once it answers a remote-control ping (whatever the log level)."""
        return self.launch().wait_ready(control_app, timeout)

    def launch(self) -> CeleryWorker:
        command = [
            str(BIN / "celery"), "-A", self.app_path, "worker", "-Q", self.queue,
            "-n", self.nodename, "--loglevel", self.loglevel,
            "-P", self.pool, "--without-gossip", "--without-mingle",
        ]
        if self.concurrency is not None:  # else the project's own default
            command += ["-c", str(self.concurrency)]
        self._spawn(command, self.env)
        return self

    def wait_ready(self, control_app: Celery, timeout: float = 90) -> CeleryWorker:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("celery worker")
            if control_app.control.ping(destination=[self.nodename], timeout=0.25):
                return self
        self.stop()
        raise RuntimeError(f"celery worker did not become ready:\n{_tail(self.log_path)}")

    def _control(self, control_app: Celery, action: str) -> None:
        method = getattr(control_app.control, action)
        replies = method(self.queue, destination=[self.nodename], reply=True, timeout=5)
        if not replies:
            raise RuntimeError(f"worker {self.nodename} did not answer {action}")

    def pause(self, control_app: Celery) -> None:
        """Stop taking new tasks from the queue (those already reserved still run)."""
        self._control(control_app, "cancel_consumer")

    def resume(self, control_app: Celery) -> None:
        self._control(control_app, "add_consumer")

    def task_events(self, control_app: Celery, on: bool) -> None:
        """Switch task events on or off, the way Flower switches them on while it runs."""
        action = control_app.control.enable_events if on else control_app.control.disable_events
        if not action(destination=[self.nodename], reply=True, timeout=5):
            raise RuntimeError(f"worker {self.nodename} did not answer the events switch")


class WebServer(ManagedProcess):
    """The web tier as `make web` runs it: gunicorn, sync workers, access log on."""

    def __init__(self, port: int, env: Mapping[str, str], log_dir: Path, workers: int = 2) -> None:
        self.port, self.env, self.workers = port, dict(env), workers
        self.log_path = log_dir / "gunicorn.log"
        self.access_log = log_dir / "gunicorn-access.log"

    def start(self, timeout: float = 60) -> WebServer:
        return self.launch().wait_ready(timeout)

    def launch(self) -> WebServer:
        command = [
            str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers), "--access-logfile", str(self.access_log),
            "web.wsgi:app",
        ]
        self._spawn(command, self.env)
        return self

    def wait_ready(self, timeout: float = 60) -> WebServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("gunicorn")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"web tier did not become healthy:\n{_tail(self.log_path)}")
