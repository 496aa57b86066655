"""Rate limits, with Flask-Limiter on Redis (the broker's REDIS_URL unless told otherwise,
Sentinel included: see shared/redis_client.py).

- Reset requests, per client IP and per normalized address. Over either limit the visitor
  sees exactly what everyone sees: the request is recorded and published like any other,
  marked `throttled`, so the work and the timing match, and the worker never sends it.
- Token submissions (following a link, posting a new password), per client IP: over the
  limit, a clear "too many attempts" page (429).
- Registrations, per client IP.

Every limit comes from the environment (shared/config.py); `RATELIMIT_ENABLED=false` turns
them all off. If Redis is unreachable the limits fall back to this process's memory, and any
other limiter failure is logged and let through: a limiter never turns a page into a 500.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from flask import Flask, current_app, g
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many

from shared.config import ConfigError, Settings
from shared.emails import normalize_email
from shared.redis_client import limiter_storage_options, limiter_storage_uri

LIMIT_SETTINGS = (
    "ratelimit_reset_request_per_ip",
    "ratelimit_reset_request_per_email",
    "ratelimit_reset_token_per_ip",
    "ratelimit_register_per_ip",
)

# A dead Redis must cost a request little: fail fast, then use memory for a while.
STORAGE_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}

limiter = Limiter(
    key_func=get_remote_address,
    strategy="sliding-window-counter",
    in_memory_fallback_enabled=True,
    swallow_errors=True,
    # Count every limit on every request, breached or not: the same work either way.
    fail_on_first_breach=False,
    # X-RateLimit-* headers would tell a visitor that a request was throttled.
    headers_enabled=False,
    key_prefix="microblog",
)


def init_rate_limits(app: Flask, settings: Settings) -> None:
    for name in LIMIT_SETTINGS:
        value = getattr(settings, name)
        try:
            parse_many(value)
        except ValueError as exc:
            raise ConfigError(f"{name.upper()} is not a rate limit: {value!r}") from exc
    app.config["RATELIMIT_STORAGE_URI"] = limiter_storage_uri(settings)
    # Flask-Limiter adds each app's options to those of the apps before it (one limiter
    # object per process; tests build many apps): start each app from its own options.
    limiter._storage_options.clear()
    app.config["RATELIMIT_STORAGE_OPTIONS"] = limiter_storage_options(settings,
                                                                      **STORAGE_TIMEOUTS)
    limiter.init_app(app)


def _setting(name: str) -> Callable[[], str]:
    """Read the limit from the app handling the request, not from import time."""

    def value() -> str:
        return str(getattr(current_app.config["SETTINGS"], name))

    return value


def email_key(email: str) -> str:
    """The per-address counter's key: keyed hash, so Redis never holds an address."""
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, normalize_email(email).encode(), hashlib.sha256)
    return "email:" + digest.hexdigest()[:32]


def _current_email_key() -> str:
    return str(g.reset_request_email_key)


@limiter.limit(_setting("ratelimit_reset_request_per_ip"), scope="reset-request-ip")
@limiter.limit(
    _setting("ratelimit_reset_request_per_email"),
    key_func=_current_email_key,
    scope="reset-request-email",
)
def _count_reset_request() -> None:
    """Counts against both limits; Flask-Limiter raises when either is exceeded."""


def reset_request_admitted(email: str) -> bool:
    """Count one reset request; False when it is over a limit (the caller still answers alike)."""
    g.reset_request_email_key = email_key(email)
    try:
        _count_reset_request()
    except RateLimitExceeded:
        return False
    return True


token_attempts = limiter.shared_limit(
    _setting("ratelimit_reset_token_per_ip"), scope="reset-token", methods=["GET", "POST"]
)
token_posts = limiter.shared_limit(
    _setting("ratelimit_reset_token_per_ip"), scope="reset-token", methods=["POST"]
)
registrations = limiter.limit(_setting("ratelimit_register_per_ip"), methods=["POST"])
