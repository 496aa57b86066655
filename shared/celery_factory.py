"""The Celery settings both tiers use: the web to publish, the worker to consume.

Durability comes first: a task is acknowledged only after it ran (`acks_late`), a task
whose worker died is requeued (`reject_on_worker_lost`), a worker reserves one task at a
time, and a message that was never acknowledged comes back after the visibility timeout
(seconds, not Redis's default hour). Events are on so Flower sees every state.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from shared.config import Settings
from shared.contract import EMAIL_QUEUE, TASK_ROUTES


def celery_settings(settings: Settings) -> dict[str, Any]:
    transport_options = {
        "visibility_timeout": settings.broker_visibility_timeout,
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "socket_keepalive": True,
        "retry_on_timeout": True,
        "health_check_interval": 10,
    }
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": EMAIL_QUEUE,
        "task_routes": TASK_ROUTES,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
        "timezone": "UTC",
    }


def make_celery(settings: Settings, main: str, **kwargs: Any) -> Celery:
    app = Celery(main, set_as_current=False, **kwargs)
    app.config_from_object(celery_settings(settings))
    return app
