"""A global send rate: at most EMAIL_SEND_RATE emails a second, across every worker.

A token bucket in Redis, refilled at the rate and holding one second's worth (a short
burst passes at once). One Lua script refills and takes a token atomically, timed by
Redis's own clock (`TIME`), so any number of workers on any number of hosts share one
bucket and one clock.

A worker whose token is at most `MAX_WAIT` away reserves it and sleeps until then: a
steady stream goes out evenly without a round trip through the outbox. When the bucket
is further behind than that, the delivery is put back: the row stays what it was (no
attempt spent, no failure, never a dead letter) and becomes due at the relay's next
sweep. The limit is a courtesy to the SMTP provider, not a guarantee: when Redis cannot
answer, mail goes out unlimited (one warning line per refused check).
"""

from __future__ import annotations

import logging
import time

import redis
from flask import current_app
from sqlalchemy import bindparam, update

from shared.config import Settings
from shared.database import db
from shared.db_clock import db_now
from shared.models import EmailDelivery
from shared.redis_client import redis_client
from worker.outbox import claimable

log = logging.getLogger(__name__)

BUCKET_KEY = "microblog:email-send-rate"
MAX_WAIT = 1.0  # seconds a worker may sleep for its token; longer, and the row goes back

# KEYS[1]: the bucket (a hash: tokens, at). ARGV: rate/s, burst, max wait in seconds.
# Returns {1, wait} when a token is reserved (send after `wait` seconds), {0, wait} when
# the next token is further than the max wait (nothing taken). Tokens below zero are
# reservations already handed out. Floats travel as strings: Lua numbers become integers.
_TAKE_TOKEN = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if wait > max_wait then return {0, tostring(wait)} end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + max_wait) * 1000) + 1000)
return {1, tostring(wait)}
"""


class SendRate:
    """The shared bucket, seen from one process."""

    def __init__(self, client: redis.Redis, rate: float, burst: float | None = None,
                 max_wait: float = MAX_WAIT, key: str = BUCKET_KEY) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.max_wait = max_wait
        self.key = key
        self._take = client.register_script(_TAKE_TOKEN)

    def reserve(self) -> float | None:
        """Take a token: the seconds to wait before sending, or None (nothing taken) when
        the next token is more than `max_wait` away."""
        granted, wait = self._take(keys=[self.key],
                                   args=[self.rate, self.burst, self.max_wait])
        return float(wait) if int(granted) else None


def _bucket(settings: Settings) -> SendRate:
    """This process's view of the bucket (built after the prefork, on first use)."""
    bucket = current_app.extensions.get("send_rate")
    if bucket is None:
        # Behind Sentinel the client's pool asks the Sentinels again after a failover.
        client = redis_client(settings, socket_timeout=0.5, socket_connect_timeout=0.5)
        bucket = SendRate(client, settings.email_send_rate or 0.0)
        current_app.extensions["send_rate"] = bucket
    return bucket  # type: ignore[no-any-return]


def wait_for_slot(settings: Settings) -> bool:
    """True: send now (having waited for the token if needed); False: put the row back."""
    if settings.email_send_rate is None:
        return True
    try:
        wait = _bucket(settings).reserve()
    except (redis.RedisError, ValueError) as exc:
        log.warning("send rate unavailable, sending without it error=%s", type(exc).__name__)
        return True
    if wait is None:
        return False
    time.sleep(wait)
    return True


# Judged and stamped by the database's clock, as every other decision about a row.
_PUT_BACK = (
    update(EmailDelivery.__table__)
    .where(EmailDelivery.__table__.c.id == bindparam("delivery_id"))
    .where(claimable())
    .values(relay_after=db_now())
)


def put_back(delivery_id: str) -> None:
    """Leave the row as it is, due for the relay's next sweep: no claim, no attempt.

    Only a row still waiting is touched: one that another worker has claimed or finished
    meanwhile is none of this task's business.
    """
    db.session.execute(_PUT_BACK, {"delivery_id": delivery_id})
    db.session.commit()
