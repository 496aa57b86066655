"""Run the test suite again against this machine's PostgreSQL and Redis, when they answer.

`make test` runs it after the default run (SQLite, embedded Redis). For each server that
answers on its standard local port, the matching variable is set for pytest:
`TEST_DATABASE_URL` (the tests create and drop their own databases on it) and
`TEST_REDIS_URL` (the tests claim one empty database number on it). A server that does not
answer is skipped with the reason printed; with neither, nothing runs and the exit status
is 0. Extra arguments go to pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379"


def postgres_problem(url: str) -> str | None:
    """None if the server accepts a connection, else why not."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    try:
        connection = psycopg.connect(
            host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
            user=parsed.username or "postgres", password=parsed.password,
            dbname=parsed.database or "postgres", connect_timeout=2,
        )
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    connection.close()
    return None


def redis_problem(url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


def main(pytest_args: list[str]) -> int:
    database = os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE
    broker = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS
    env = dict(os.environ)
    chosen = []
    problem = postgres_problem(database)
    if problem is None:
        env["TEST_DATABASE_URL"] = database
        chosen.append(f"PostgreSQL ({database})")
    else:
        env.pop("TEST_DATABASE_URL", None)
        print(f"test-services: PostgreSQL skipped, {database} does not answer: {problem}")
    problem = redis_problem(broker)
    if problem is None:
        env["TEST_REDIS_URL"] = broker
        chosen.append(f"Redis ({broker})")
    else:
        env.pop("TEST_REDIS_URL", None)
        print(f"test-services: standalone Redis skipped, {broker} does not answer: {problem}")
    if not chosen:
        print("test-services: skipped, neither PostgreSQL nor Redis answers on this machine")
        return 0
    print(f"test-services: running the suite against {' and '.join(chosen)}", flush=True)
    command = [sys.executable, "-m", "pytest", *pytest_args]
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
