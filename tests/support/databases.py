"""Throwaway databases on a real PostgreSQL server, for running the suite against it.

`TEST_DATABASE_URL` names the server (any database on it, e.g.
`postgresql+psycopg://postgres@127.0.0.1:5432/postgres`). Each test session creates its own
databases, named after the session's process id so parallel runs never meet, and drops
them at the end; databases left behind by a run that was killed are dropped by the next.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

PREFIX = "microblog_test_"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostgresServer:
    """Creates, resets and drops databases named `microblog_test_<pid>_<random>`."""

    def __init__(self, server_url: str) -> None:
        self.server_url = make_url(server_url)
        if not self.server_url.drivername.startswith("postgresql"):
            raise ValueError(f"TEST_DATABASE_URL must be a PostgreSQL URL, not {server_url!r}")
        self.created: list[str] = []

    @contextmanager
    def _admin(self) -> Iterator[Connection]:
        engine = create_engine(self.server_url.set(database="postgres"),
                               isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    def url_of(self, name: str) -> str:
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def create(self) -> str:
        name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        with self._admin() as admin:
            admin.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url_of(name)

    def reset(self, url: str) -> None:
        """Empty a database between tests: every connection closed, the schema recreated."""
        name = make_url(url).database
        with self._admin() as admin:
            admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = :name AND pid <> pg_backend_pid()"),
                          {"name": name})
        engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SET lock_timeout = '10s'"))
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        finally:
            engine.dispose()

    def drop(self, name: str) -> None:
        with self._admin() as admin:
            admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop_created(self) -> None:
        while self.created:
            self.drop(self.created.pop())

    def drop_abandoned(self) -> None:
        """Drop test databases whose session process is gone (a killed run leaves them)."""
        with self._admin() as admin:
            names = admin.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                                  {"p": PREFIX + "%"}).scalars().all()
        for name in names:
            pid = name.removeprefix(PREFIX).split("_", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                self.drop(name)
