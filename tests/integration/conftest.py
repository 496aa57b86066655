"""Real parts on loopback: a Redis server process, an aiosmtpd server, a celery worker process.

The fault-injection tests (test_faults_*.py) get their own Redis per test (they kill and
restart it), short timeouts, and a `fault_figures` recorder whose table is printed at the
end of every run, `-s` or not.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from support.faults import SHORT_TIMEOUTS, FaultFigures
from support.mailbox import SmtpServer
from support.processes import RedisServer, ServiceProcess, WorkerProcess
from support.redis_db import ClaimedRedis
from support.web_apps import built_web_app

from scripts.embedded_redis import free_port
from shared.config import Settings

FIGURES = pytest.StashKey[list[FaultFigures]]()
CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="module")
def redis_url(standalone_redis: ClaimedRedis | None) -> Iterator[str]:
    """The standalone Redis of TEST_REDIS_URL (emptied per module), else our own server."""
    if standalone_redis is not None:
        standalone_redis.flush()
        yield standalone_redis.url
        standalone_redis.flush()
        return
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


def stack_environment(database_url: str, redis_url: str, smtp_port: int) -> dict[str, str]:
    """The environment an operator would give both tiers."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "integration-secret-key-0123456789abcdef",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "MAIL_DEFAULT_SENDER": "Microblog <no-reply@example.test>",
        "SERVER_NAME": "microblog.example.test",
        "PREFERRED_URL_SCHEME": "https",
        "TRUSTED_PROXIES": "0",
    }


@pytest.fixture
def stack_env(database_url: str, redis_url: str, smtp_server: SmtpServer) -> dict[str, str]:
    return stack_environment(database_url, redis_url, smtp_server.port)


@pytest.fixture
def empty_broker(redis_url: str, standalone_redis: ClaimedRedis | None) -> str:
    """Each test starts with an empty broker: a worker stopped right after the SMTP server
    accepted can hand its not-yet-acknowledged message back to Redis (acks_late)."""
    if standalone_redis is not None:
        standalone_redis.flush()  # keeps this session's claim on the database
    else:
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()
    return redis_url


def web_app_for(env: dict[str, str]) -> Iterator[Flask]:
    with built_web_app(Settings.from_env(env)) as app:
        yield app


@pytest.fixture
def web_app(stack_env: dict[str, str], empty_broker: str) -> Iterator[Flask]:
    yield from web_app_for(stack_env)


@pytest.fixture
def worker(stack_env: dict[str, str], web_app: Flask) -> Iterator[WorkerProcess]:
    process = WorkerProcess(stack_env).start()
    yield process
    process.stop()


# --- fault injection -------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis for this test alone: it may be killed and restarted (AOF on)."""
    server = RedisServer(data_dir=tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def fault_env(database_url: str, own_redis: RedisServer,
              smtp_server: SmtpServer) -> dict[str, str]:
    """Short timeouts, unless FAULT_TIMEOUTS=production asks for the shipped defaults
    (for measuring real recovery times by hand; the sleeps in the tests stay short)."""
    env = stack_environment(database_url, own_redis.url, smtp_server.port)
    # A burst of a hundred users all comes from one loopback address: no rate limits here.
    env["RATELIMIT_ENABLED"] = "false"
    if os.environ.get("FAULT_TIMEOUTS") != "production":
        env.update(SHORT_TIMEOUTS)
    return env


@pytest.fixture
def fault_web(fault_env: dict[str, str]) -> Iterator[Flask]:
    yield from web_app_for(fault_env)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def processes(request: pytest.FixtureRequest,
              fault_web: Flask) -> Iterator[Callable[[ServiceProcess], ServiceProcess]]:
    """Start processes for the test; whatever is still running at the end is killed.

    When the test failed, the end of each process's output is printed with the report.
    """
    started: list[ServiceProcess] = []

    def start(process: ServiceProcess) -> ServiceProcess:
        started.append(process)
        return process.start()

    yield start
    for process in reversed(started):
        process.kill()
    if request.node.stash.get(CALL_FAILED, False):
        for process in started:
            print(f"----- {type(process).__name__} output (last 150 lines) -----")
            print("".join(process.output[-150:]))


@pytest.fixture
def fault_worker(fault_env: dict[str, str], processes) -> WorkerProcess:
    """A worker as `make worker` runs it: it sends, and it relays the outbox (no beat)."""
    return processes(WorkerProcess(fault_env))  # type: ignore[return-value]


@pytest.fixture
def fault_figures(request: pytest.FixtureRequest) -> Callable[..., FaultFigures]:
    """Record a test's figures: shown in the terminal summary and the JUnit properties."""

    def record(**values: object) -> FaultFigures:
        figures = FaultFigures(**values)  # type: ignore[arg-type]
        request.config.stash.setdefault(FIGURES, []).append(figures)
        request.node.user_properties.append(("fault_figures", figures.line()))
        print(figures.line())
        return figures

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES, [])
    if not figures:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault injection: requests accepted, delivered, duplicates, "
                             "time to recover")
    write(f"{'fault':<44} {'accepted':>8} {'delivered':>9} {'dups':>4} {'recovery':>9}")
    for row in figures:
        write(f"{row.fault:<44} {row.accepted:>8} {row.delivered:>9} {row.duplicates:>4} "
              f"{row.recovery_seconds:>8.1f}s")
        for note in row.notes:
            write(f"    {note}")
