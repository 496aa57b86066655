"""kombu's Redis transport, except that a channel cut off from its broker connection
fails as a lost connection instead of with AttributeError.

Celery reacts to a lost broker connection by collecting it (`Connection.collect()`) and
then closing it. If Redis died while the worker waited in BRPOP for more work with a send
still unacknowledged (`acks_late`), the collect leaves the task channel open (reading the
pending BRPOP fails, then closing the remote-control channel fails) yet detaches the
transport all the same (`transport.client = None`). The close that follows drops the
channel's connection pool and, to put the unacknowledged messages back, builds a new one
from the detached transport (kombu 5.7, `Channel._connparams`):
`AttributeError: 'NoneType' object has no attribute 'hostname'`. Celery treats that as
unrecoverable and the worker exits. The acknowledgement of the send, once it ends, takes
the same path.

A connection error there instead is what Celery expects from a dead broker: the close
and the acknowledgement are logged and skipped, the consumer reconnects, and Redis hands
the unacknowledged messages out again after the visibility timeout, where the outbox
claim turns them into no-ops for emails already sent.

The same holds behind Redis Sentinel (`sentinel://`), whose channel asks the Sentinels for
the master only after reading the same connection parameters: `SentinelTransport`.
Selected with Celery's `broker_transport` (see shared/celery_factory.py).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class DetachedChannelError(RedisConnectionError):
    """The channel's broker connection was closed or collected: nothing left to reach."""


class DetachedChannelGuard:
    """For a kombu Redis channel class: no new connection pool once it is detached."""

    connection: Any

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        """Where a new connection pool connects: nowhere, once the transport is detached."""
        transport = self.connection  # None once the channel itself is closed
        if transport is None or transport.client is None:
            raise DetachedChannelError(
                "Redis channel used after its broker connection was closed")
        params: dict[str, Any] = super()._connparams(  # type: ignore[misc]
            asynchronous=asynchronous)
        return params


class Channel(DetachedChannelGuard, kombu_redis.Channel):  # type: ignore[misc]
    pass


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    """`broker_transport = "shared.redis_transport:Transport"`."""

    Channel = Channel


class SentinelChannel(DetachedChannelGuard, kombu_redis.SentinelChannel):  # type: ignore[misc]
    pass


class SentinelTransport(kombu_redis.SentinelTransport):  # type: ignore[misc]
    """`broker_transport = "shared.redis_transport:SentinelTransport"`."""

    Channel = SentinelChannel
