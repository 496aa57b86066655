"""Rate limits, with Flask-Limiter on Redis (the broker's REDIS_URL unless told otherwise,
Sentinel included: see shared/redis_client.py).

- Reset requests, per client IP and per normalized address. Over either limit the visitor
  sees exactly what everyone sees: the request is recorded and published like any other,
  marked `throttled`, so the work and the timing match, and the worker never sends it.
- Token submissions (following a link, posting a new password), per client IP: over the
  limit, a clear "too many attempts" page (429).
- Registrations, per client IP.
- Sign-ins, per client IP and per user name, counting failed attempts only, and checked
  before any password is hashed: over either limit, the "too many attempts" page (429),
  the same for every name, known or not. A browser that signed in to that name before
  (it holds a device cookie, web/auth/device_cookies.py) is exempt from the per-name limit
  and has one of its own instead, so a stranger guessing at a name does not lock its owner
  out (OWASP's "device cookies").

Every limit comes from the environment (shared/config.py); `RATELIMIT_ENABLED=false` turns
them all off. If Redis is unreachable the limits fall back to this process's memory, and any
other limiter failure is logged and let through: a limiter never turns a page into a 500.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from flask import Flask, Response, current_app, g
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
    "ratelimit_reset_request_ceiling_per_ip",
    "ratelimit_login_per_ip",
    "ratelimit_login_per_username",
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


def _keyed_digest(value: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]


def email_key(email: str) -> str:
    """The per-address counter's key: keyed hash, so Redis never holds an address."""
    return "email:" + _keyed_digest(normalize_email(email))


def username_key(username: str) -> str:
    """The per-name counter's key: keyed hash, case folded (`Susan` counts as `susan`)."""
    return "username:" + _keyed_digest("username\0" + username.strip().casefold())


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
# A flood from one address past the ceiling gets the 429 page and writes nothing. Telling
# that address it is throttled reveals nothing about accounts: the ceiling counts requests
# per IP, whatever address they name.
reset_request_ceiling = limiter.limit(
    _setting("ratelimit_reset_request_ceiling_per_ip"), methods=["POST"],
    scope="reset-request-ceiling",
)


def _sign_in_failed(response: Response) -> bool:
    """Only failed sign-ins count; Flask-Limiter asks when the response goes out."""
    return bool(g.get("sign_in_failed", False))


def _current_username_key() -> str:
    return str(g.sign_in_username_key)


def _current_device_key() -> str:
    return "device:" + str(g.sign_in_device)


def _from_known_device() -> bool:
    return g.get("sign_in_device") is not None


def _from_unknown_device() -> bool:
    return g.get("sign_in_device") is None


@limiter.limit(_setting("ratelimit_login_per_ip"), scope="login-ip", deduct_when=_sign_in_failed)
@limiter.limit(
    _setting("ratelimit_login_per_username"),
    key_func=_current_username_key,
    scope="login-username",
    exempt_when=_from_known_device,
    deduct_when=_sign_in_failed,
)
@limiter.limit(
    _setting("ratelimit_login_per_username"),
    key_func=_current_device_key,
    scope="login-device",
    exempt_when=_from_unknown_device,
    deduct_when=_sign_in_failed,
)
def _check_sign_in() -> None:
    """Tests every sign-in limit; Flask-Limiter raises when one is used up."""


def sign_in_admitted(username: str, device: str | None) -> bool:
    """May this attempt check a password? Asked before any hashing.

    `device` is the nonce of a valid device cookie for this name, or None.
    """
    g.sign_in_username_key = username_key(username)
    g.sign_in_device = device
    try:
        _check_sign_in()
    except RateLimitExceeded:
        return False
    return True


def count_failed_sign_in() -> None:
    """Count this attempt against the limits it was checked against (when it is answered)."""
    g.sign_in_failed = True
