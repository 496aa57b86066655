"""Flower's configuration: `celery -A worker.celery_app:celery_app flower --conf=flowerconfig.py`.

Flower runs this file after reading its FLOWER_* environment variables and command-line
flags, and before it starts serving. It enforces two rules:

* No Flower without authentication. FLOWER_BASIC_AUTH (`user:password`, comma-separated
  for several) or OAuth (`--auth`) must be set; the one exception is development on
  loopback (APP_ENV=development and --address=127.0.0.1), which is what `make run` starts.
  Outside development each password has at least 16 characters and is none of the
  placeholders shared/config.py refuses for SECRET_KEY.
* `/metrics` behind the same authentication. Flower 2.2 serves `/metrics` (task names,
  worker names, counts) to anyone, even with basic auth on (its docs list it, with
  `/healthcheck`, as exempt); Prometheus scrapes it with the same credentials
  (`basic_auth` in the scrape config). `/healthcheck` stays open: it says only "OK".

It also reads the broker with kombu's own Redis transport, so that the Broker page works,
and, behind Redis Sentinel, finds the master through every Sentinel in REDIS_URL and reads
the broker's database (Flower's own client asks only the first Sentinel, for database 0).
"""

from __future__ import annotations

import tornado.web
from flower import urls
from flower.utils import broker
from flower.views.monitor import Metrics
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from tornado.options import options

from shared.config import ConfigError, Settings, exit_on_config_error, weak_secret_problem
from shared.redis_client import sentinel_address

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Typed by people into a browser's login prompt, unlike SECRET_KEY: shorter, still not short.
MIN_PASSWORD_LENGTH = 16


class AuthenticatedMetrics(Metrics):
    """Flower's Prometheus endpoint, answering only requests that pass Flower's auth."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await super().get()


def _basic_auth_problem(pairs: list[str] | None, development: bool) -> str | None:
    for pair in pairs or []:
        user, _, password = pair.partition(":")
        if not user or not password:
            return "FLOWER_BASIC_AUTH: must be user:password pairs, separated by commas"
        if not development:
            problem = weak_secret_problem(f"FLOWER_BASIC_AUTH (password of {user})", password,
                                          MIN_PASSWORD_LENGTH)
            if problem:
                return problem
    return None


def _check_authentication() -> None:
    development = Settings.from_env().is_development
    problem = _basic_auth_problem(options.basic_auth, development)
    if problem:
        raise ConfigError(problem)
    if options.basic_auth or options.auth:
        return
    if development and options.address in LOOPBACK:
        return
    raise ConfigError(
        "FLOWER_BASIC_AUTH: Flower refuses to start without authentication: set "
        "FLOWER_BASIC_AUTH=user:password (or OAuth with --auth)")


def _protect_metrics() -> None:
    for index, handler in enumerate(urls.handlers):
        if isinstance(handler, tuple) and handler[0] == r"/metrics":
            urls.handlers[index] = (r"/metrics", AuthenticatedMetrics)
            return
    raise SystemExit("flowerconfig.py: Flower has no /metrics route to protect; check its version")


def _read_the_broker_with_kombus_transport() -> None:
    """Flower's Broker page and /api/queues/length choose their client by the scheme of the
    broker URL as kombu spells it, and with `broker_transport` set kombu spells the class
    path (`shared.redis_transport:Transport://...`): both would answer 404. That transport
    only changes how a worker holding unacknowledged tasks fails when Redis dies; Flower
    holds none."""
    from worker.celery_app import celery_app

    celery_app.conf.broker_transport = None


class SentinelMaster(Redis):
    """The master's client; Flower closes it after each read, and with it the Sentinels'."""

    sentinel: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for node in self.sentinel.sentinels if self.sentinel else ():
            await node.aclose()


class RedisSentinel(broker.RedisSentinel):  # type: ignore[misc]
    def _get_redis_client(self, broker_options: dict, broker_use_ssl: object) -> Redis:
        from worker.celery_app import celery_app

        # Flower passes the URL of the first Sentinel only; the broker URL has them all.
        address = sentinel_address(celery_app.conf.broker_url)
        assert address is not None
        timeouts: dict[str, object] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            # No retries, as Flower's own: the next Sentinel, the next page, are the retry.
            "retry": Retry(NoBackoff(), 0),
        }
        sentinel = Sentinel(address.sentinels, **timeouts, sentinel_kwargs={
            **(broker_options.get("sentinel_kwargs") or {}), **timeouts})
        client = sentinel.master_for(self.master_name, redis_class=SentinelMaster,
                                     db=address.db, username=address.username,
                                     password=address.password)
        client.sentinel = sentinel
        return client


def _read_sentinel_brokers_through_every_sentinel() -> None:
    broker.RedisSentinel = RedisSentinel  # what flower.utils.broker.Broker builds


with exit_on_config_error():
    _check_authentication()
_protect_metrics()
_read_the_broker_with_kombus_transport()
_read_sentinel_brokers_through_every_sentinel()

# Not set: purge_offline_workers. Flower counts the web tier's task-sent events under the
# web process's name, which is never an online worker, so purging would wipe those
# counters from /metrics at every scrape. Workers removed by --scale stay listed, offline.
