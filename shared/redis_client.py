"""Where Redis is, read once from REDIS_URL for everything that talks to it: Celery (the
worker and the web tier's publisher), /healthz, /metrics and the rate limiter.

REDIS_URL names either one server (`redis://`, `rediss://`) or a master that Redis
Sentinel keeps track of, in kombu's syntax, one `sentinel://` part per Sentinel:

    REDIS_URL=sentinel://:password@sentinel-1:26379;sentinel://sentinel-2:26379/0

The credentials and the database number belong to the master (the data node), as kombu
reads them; they may be written on any one part, or on every part alike. The Sentinels'
own password is REDIS_SENTINEL_PASSWORD, the master's name REDIS_SENTINEL_MASTER. After a
failover every client asks the Sentinels again and follows the new master.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from shared.config import ConfigError, Settings

SENTINEL_SCHEME = "sentinel"
SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelAddress:
    """The Sentinels to ask, and how to log in to the master they name."""

    sentinels: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def kombu_url(self) -> str:
        """The broker URL for kombu, every part alike: kombu reads the credentials and the
        database from whichever part it is connected through, and switches parts when a
        connection fails."""
        auth = ""
        if self.username or self.password:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"
        return ";".join(f"{SENTINEL_SCHEME}://{auth}{_host(host)}:{port}/{self.db}"
                        for host, port in self.sentinels)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].strip().lower() == SENTINEL_SCHEME


@lru_cache(maxsize=8)
def sentinel_address(url: str) -> SentinelAddress | None:
    """The Sentinels a `sentinel://` REDIS_URL names; None for a plain Redis URL.

    Parsed once per URL: /healthz and /metrics ask on every request."""
    if not is_sentinel_url(url):
        return None
    sentinels: list[tuple[str, int]] = []
    dbs: set[int] = set()
    logins: set[tuple[str | None, str | None]] = set()
    for number, part in enumerate(url.split(";"), start=1):
        where = f"REDIS_URL part {number}"
        try:
            parsed = urlsplit(part.strip())
            port = parsed.port or SENTINEL_PORT
        except ValueError as exc:  # a port that is not a number; the message holds no secret
            raise ConfigError(f"{where} is not a sentinel://host:port URL") from exc
        if parsed.scheme.lower() != SENTINEL_SCHEME or not parsed.hostname:
            raise ConfigError(f"{where} must be sentinel://host:port like the first")
        sentinels.append((parsed.hostname, port))
        path = parsed.path.strip("/")
        if path:
            if not path.isdigit():
                raise ConfigError(f"{where}: the database must be a number, not {path!r}")
            dbs.add(int(path))
        if parsed.username or parsed.password:
            logins.add((unquote(parsed.username) if parsed.username else None,
                        unquote(parsed.password) if parsed.password else None))
    if len(dbs) > 1:
        raise ConfigError("REDIS_URL names different databases in its sentinel:// parts")
    if len(logins) > 1:
        raise ConfigError("REDIS_URL names different credentials in its sentinel:// parts")
    username, password = logins.pop() if logins else (None, None)
    return SentinelAddress(tuple(sentinels), dbs.pop() if dbs else 0, username, password)


def sentinel_kwargs(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """How to connect to the Sentinels themselves: their own password (never the master's),
    the same socket timeouts as the master (redis-py drops them once this is given), and no
    retries: the next Sentinel is the retry. redis-py's default, three retries with
    backoff, made every health check wait about 3.5 s while one Sentinel was down."""
    socket_options = {key: value for key, value in options.items() if key.startswith("socket_")}
    password = settings.redis_sentinel_password
    return {**socket_options, "username": None,
            "password": password.get_secret_value() if password else None,
            "retry": Retry(NoBackoff(), 0)}


class SentinelMasterClient(redis.Redis):
    """The master's client; closing it also closes its connections to the Sentinels."""

    sentinel: Sentinel | None = None

    def close(self) -> None:
        super().close()
        for node in self.sentinel.sentinels if self.sentinel else ():
            node.close()


def redis_client(settings: Settings, **options: Any) -> redis.Redis:
    """A client for the current master, with `options` (socket timeouts) for every socket.

    Short-lived: the caller closes it. Behind Sentinel each new connection asks the
    Sentinels where the master is, so a client made after a failover reaches the new one.
    """
    address = sentinel_address(settings.redis_url)
    if address is None:
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinel = Sentinel(address.sentinels, sentinel_kwargs=sentinel_kwargs(settings, options),
                        **options)
    client = sentinel.master_for(settings.redis_sentinel_master, redis_class=SentinelMasterClient,
                                 db=address.db, username=address.username,
                                 password=address.password)
    client.sentinel = sentinel
    return client


def limiter_storage_uri(settings: Settings) -> str:
    """Flask-Limiter's storage: RATELIMIT_STORAGE_URI as given, else the broker's Redis,
    spelt the way the `limits` library names a Sentinel master (`redis+sentinel://`)."""
    if settings.ratelimit_storage_uri:
        return settings.ratelimit_storage_uri
    address = sentinel_address(settings.redis_url)
    if address is None:
        return settings.redis_url
    hosts = ",".join(f"{_host(host)}:{port}" for host, port in address.sentinels)
    return f"redis+sentinel://{hosts}/{quote(settings.redis_sentinel_master, safe='')}"


def limiter_storage_options(settings: Settings, **options: Any) -> dict[str, Any]:
    """The keyword arguments `limits` passes to its storage along with that URI.

    Behind Sentinel: the master's credentials and database (kept out of the URI), the
    Sentinels' password, and every count read from the master: a replica lags behind it,
    and a limit read there would let a burst through.
    """
    address = sentinel_address(settings.redis_url)
    if settings.ratelimit_storage_uri or address is None:
        return dict(options)
    return {
        **options,
        "db": address.db,
        "username": address.username,
        "password": address.password,
        "sentinel_kwargs": sentinel_kwargs(settings, options),
        "use_replicas": False,
    }
