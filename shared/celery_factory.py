"""The Celery settings both tiers use: the web to publish, the worker to consume.

Durability comes first: a task is acknowledged only after it ran (`acks_late`), a task
whose worker died is requeued (`reject_on_worker_lost`), and a message that was never
acknowledged comes back after the visibility timeout (seconds, not Redis's default hour),
found by a sweep that runs every few seconds (kombu's default sweeps only every ~100 s).
No task is ever scheduled with a countdown or an ETA: on Redis those are held
unacknowledged by a worker and redelivered, again and again, each time the visibility
timeout passes. Retries live in the outbox instead (see worker/relay.py). On Redis, kombu's
transport comes with one fix (shared/redis_transport.py): a worker that loses Redis in the
middle of a send reconnects instead of exiting. Behind Redis Sentinel (a `sentinel://`
REDIS_URL, see shared/redis_client.py) the same fix applies, and kombu asks the Sentinels
for the master whenever it connects, so a failover is a lost connection like any other.

Throughput (`make bench`, 2 cores, prefork): an email task waits on SQLite or PostgreSQL,
on the SMTP server's replies and on the pool's parent for its next message for about as
long as it computes, so the pool runs two processes per core, and the parent keeps
`WORKER_PREFETCH_MULTIPLIER` (4) messages per process reserved so a child never waits for
a broker round trip. Reserved messages are unacknowledged: a warm shutdown puts them back
at once, a killed worker's come back after the visibility timeout.

Task events cost the pool's parent about 0.4 ms per task (three events each), a fifth of
what an email costs. They are off unless `TASK_EVENTS=true`; Flower switches the workers'
events on by itself whenever it runs (it broadcasts `enable_events` every few seconds), and
`TASK_EVENTS=true` adds the web tier's task-sent events and events from the worker's
first task on. The compose stack, which ships Flower, sets it.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from shared.config import Settings
from shared.contract import EMAIL_QUEUE, TASK_ROUTES
from shared.redis_client import sentinel_address, sentinel_kwargs

REDIS_SCHEMES = ("redis", "rediss")
REDIS_TRANSPORT = "shared.redis_transport:Transport"
SENTINEL_TRANSPORT = "shared.redis_transport:SentinelTransport"


def broker_transport(broker_url: str) -> str | None:
    """The transport for a broker URL: ours for Redis and Sentinel, else the one its
    scheme names."""
    scheme = broker_url.partition("://")[0].lower()
    if scheme == "sentinel":
        return SENTINEL_TRANSPORT
    return REDIS_TRANSPORT if scheme in REDIS_SCHEMES else None


def broker_url(settings: Settings) -> str:
    """REDIS_URL, with every part of a Sentinel URL naming the same database and login."""
    address = sentinel_address(settings.redis_url)
    return address.kombu_url() if address else settings.redis_url


def with_sentinel(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """Transport options plus, behind Sentinel, the master's name and how to reach the
    Sentinels (their password; the master's comes from the URL)."""
    if sentinel_address(settings.redis_url) is None:
        return options
    return {**options, "master_name": settings.redis_sentinel_master,
            "sentinel_kwargs": sentinel_kwargs(settings, options)}


def restore_interval(settings: Settings) -> int:
    """Seconds between sweeps for unacknowledged messages past the visibility timeout."""
    return max(1, min(5, settings.broker_visibility_timeout // 6))


def celery_settings(settings: Settings) -> dict[str, Any]:
    transport_options = {
        "visibility_timeout": settings.broker_visibility_timeout,
        # Sweep every few seconds, and scan on every sweep (kombu scans every 10th).
        "unacked_restore_interval": restore_interval(settings),
        "unacked_restore_throttle": 1,
        # A worker killed during a sweep holds its lock until this expires (default 300 s).
        "unacked_mutex_expire": max(10, settings.broker_visibility_timeout),
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "socket_keepalive": True,
        # No retry inside redis-py: with it, a pub/sub read on a connection that died
        # while the worker was not looking (Redis restarted meanwhile) reconnects and then
        # blocks forever on the new socket, freezing the worker's event loop. Without it
        # the error reaches kombu, which restarts the consumer; publishes have their own
        # retry policy.
        "retry_on_timeout": False,
        "health_check_interval": 10,
    }
    return {
        "broker_url": broker_url(settings),
        "broker_transport": broker_transport(settings.redis_url),
        "broker_transport_options": with_sentinel(settings, transport_options),
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        "worker_concurrency": settings.worker_concurrency or 2 * (os.cpu_count() or 1),
        # SIGTERM is a warm shutdown: running sends finish (the hard time limit bounds
        # them), reserved messages go back to the queue. A cold shutdown (SIGQUIT, a
        # second Ctrl-C) still gives running sends this long before requeueing them.
        "worker_soft_shutdown_timeout": float(settings.task_soft_time_limit),
        # A lost broker connection does not cancel a send in progress: cancelling after
        # the SMTP server said 250 would only make a duplicate.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_default_queue": EMAIL_QUEUE,
        "task_routes": TASK_ROUTES,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "task_track_started": True,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
        "timezone": "UTC",
    }


def publisher_settings(settings: Settings) -> dict[str, Any]:
    """For a process that only publishes (the web tier): never wait long for the broker.

    A request must not hang on a dead broker; the outbox row is committed, so a failed
    publish costs nothing but a relay interval.
    """
    timeout = settings.publish_timeout_seconds
    options = {
        **celery_settings(settings)["broker_transport_options"],
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # Connection attempts before a publish gives up (kombu's default: forever).
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.1,
        "interval_max": 0.1,
        "connect_retries_timeout": timeout,
    }
    return {"broker_transport_options": with_sentinel(settings, options),
            "broker_connection_timeout": timeout}


def make_celery(settings: Settings, main: str, publisher_only: bool = False,
                **kwargs: Any) -> Celery:
    app = Celery(main, set_as_current=False, **kwargs)
    config = celery_settings(settings)
    if publisher_only:
        config.update(publisher_settings(settings))
    app.config_from_object(config)
    return app
