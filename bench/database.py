"""Where a benchmark run keeps its rows: a SQLite file in the run directory, or a
throwaway database on a PostgreSQL server (`--postgres`), created for the run and dropped
after it, so the production stack can be measured without touching anyone's data."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text


@contextmanager
def bench_database(run_dir: Path, postgres_server: str | None) -> Iterator[str]:
    """Yield the SQLAlchemy URL the stack should use for this run."""
    if not postgres_server:
        yield f"sqlite:///{run_dir / 'bench.db'}"
        return
    server = make_url(postgres_server)
    name = f"microblog_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
