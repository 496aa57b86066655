"""A database of a standalone Redis server that this test session may empty at will.

`TEST_REDIS_URL` names the server. With a database number (`redis://127.0.0.1:6379/14`)
the session uses exactly that one; without (`redis://127.0.0.1:6379`) it takes the highest
empty one. Either way it claims the database with a marker key first, and refuses one that
holds anything else: the tests flush it, and somebody else's data must not go with it.
Celery's remote-control and event channels are prefixed with the database number by kombu,
so sessions on different databases of one server never hear each other.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

import redis

CLAIM_KEY = "microblog-tests:claimed-by"


class RedisDatabaseBusy(RuntimeError):
    """The database named by TEST_REDIS_URL holds data this session did not put there."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim_is_stale(owner: bytes | None) -> bool:
    if owner is None:
        return False
    host, _, pid = owner.decode(errors="replace").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class ClaimedRedis:
    def __init__(self, server_url: str) -> None:
        self.server = urlsplit(server_url)
        self.db: int | None = None

    def _explicit_db(self) -> int | None:
        path = self.server.path.strip("/")
        return int(path) if path.isdigit() else None

    def url_of(self, db: int) -> str:
        return urlunsplit(self.server._replace(path=f"/{db}"))

    @property
    def url(self) -> str:
        assert self.db is not None, "claim() first"
        return self.url_of(self.db)

    def _client(self, db: int) -> redis.Redis:
        return redis.Redis.from_url(self.url_of(db), socket_timeout=5, socket_connect_timeout=2)

    def _try_claim(self, db: int) -> bool:
        client = self._client(db)
        try:
            owner = client.get(CLAIM_KEY)
            if _claim_is_stale(owner):
                client.flushdb()
                owner = None
            if owner is not None or client.dbsize() != 0:
                return False
            return bool(client.set(CLAIM_KEY, _owner(), nx=True))
        finally:
            client.close()

    def claim(self) -> ClaimedRedis:
        explicit = self._explicit_db()
        candidates = [explicit] if explicit is not None else list(range(15, 0, -1))
        for db in candidates:
            if self._try_claim(db):
                self.db = db
                return self
        where = f"database {explicit}" if explicit is not None else "any of databases 1-15"
        server = self.server._replace(path="").geturl()
        raise RedisDatabaseBusy(
            f"{where} of {server} holds data the tests did not put there; "
            "point TEST_REDIS_URL at an empty database (the tests flush it)")

    def flush(self) -> None:
        """Empty the database between test modules, keeping the claim."""
        assert self.db is not None
        client = self._client(self.db)
        try:
            client.flushdb()
            client.set(CLAIM_KEY, _owner())
        finally:
            client.close()

    def release(self) -> None:
        if self.db is None:
            return
        client = self._client(self.db)
        try:
            client.flushdb()
        finally:
            client.close()
        self.db = None
