"""Settings for both tiers, read once from the environment (12-factor).

Every knob the operator can turn is an environment variable documented in `.env.example`.
Tests build `Settings` from a plain mapping instead of touching `os.environ`.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"
ENVIRONMENTS = ("development", "testing", "production")
# A claimed outbox row stays with its worker this long past the task's hard time limit.
LEASE_MARGIN_SECONDS = 2


class ConfigError(RuntimeError):
    """The environment does not describe a configuration that is safe to run."""


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> tuple[str, ...]:
    """A comma-separated variable as a tuple, blanks dropped."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _optional_flag(value: str | None) -> bool | None:
    return None if value is None or not value.strip() else _flag(value)


@dataclass(frozen=True)
class Settings:
    env: str = "production"
    secret_key: str = DEV_SECRET_KEY
    database_url: str = "sqlite:///microblog.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    mail_server: str = "127.0.0.1"
    mail_port: int = 8025
    mail_use_tls: bool = False
    mail_use_ssl: bool = False
    mail_username: str | None = None
    mail_password: str | None = None
    mail_default_sender: str = "Microblog <no-reply@localhost>"
    server_name: str | None = None
    preferred_url_scheme: str = "https"
    port: int = 5000
    app_name: str = "Microblog"
    reset_token_minutes: int = 10
    smtp_timeout_seconds: float = 10.0
    task_soft_time_limit: int = 15
    task_time_limit: int = 20
    broker_visibility_timeout: int = 30
    publish_timeout_seconds: float = 0.5
    # The worker pool and Celery events (see shared/celery_factory.py for the measurements).
    worker_concurrency: int | None = None  # None: two processes per core
    worker_prefetch_multiplier: int = 4
    task_events: bool = False
    # The email outbox: how often the relay sweeps, when a waiting row counts as stuck,
    # and the retry policy for transient SMTP failures.
    outbox_relay_interval: float = 5.0
    outbox_stale_after: int = 30
    retry_backoff_base: float = 2.0
    retry_backoff_max: float = 120.0
    delivery_max_attempts: int = 10
    # Reset-flow security (rate limits, key rotation, hosts, cookies).
    secret_key_fallbacks: tuple[str, ...] = ()
    ratelimit_enabled: bool = True
    ratelimit_storage_uri: str | None = None
    ratelimit_reset_request_per_ip: str = "10 per 15 minutes"
    ratelimit_reset_request_per_email: str = "3 per 15 minutes"
    ratelimit_reset_token_per_ip: str = "20 per 15 minutes"
    ratelimit_register_per_ip: str = "10 per hour"
    trusted_hosts: tuple[str, ...] = ()
    trusted_proxies: int = 0
    session_cookie_secure: bool | None = None
    metrics_token: str | None = None  # Bearer token for the web tier's /metrics; None: off
    # SMTP transport security (verified TLS; AUTH never in clear unless allowed).
    mail_ca_file: str | None = None  # a private CA bundle trusted besides the system store
    mail_allow_plaintext_auth: bool = False
    # Sign-in throttling and password hashing.
    ratelimit_login_per_ip: str = "20 per 5 minutes; 100 per hour"
    ratelimit_login_per_username: str = "10 per 5 minutes; 50 per hour; 100 per day"
    password_hash_method: str = "argon2id:m=19456,t=2,p=1"  # shared/passwords.py
    # Server-side sessions (Flask-Session in Redis); None uses REDIS_URL.
    session_redis_url: str | None = None
    session_lifetime_hours: int = 24 * 14
    # The outbox: retention of finished rows, a global send rate, the relay's sweep.
    outbox_retention_hours: float = 7 * 24
    email_send_rate: float | None = None  # emails per second across all workers; None: off
    outbox_stall_after: int = 120  # seconds a due row may wait before health says so
    # Redis Sentinel (REDIS_URL=sentinel://host:26379;sentinel://host2:26379/0).
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `environ` (default: the process environment plus `.env`)."""
        if environ is None:
            _load_dotenv()
            environ = os.environ
        env = environ.get("APP_ENV", "production").strip().lower()
        if env not in ENVIRONMENTS:
            raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
        get = environ.get
        return cls(
            env=env,
            secret_key=get("SECRET_KEY", DEV_SECRET_KEY),
            database_url=get("DATABASE_URL", cls.database_url),
            redis_url=get("REDIS_URL", cls.redis_url),
            mail_server=get("MAIL_SERVER", cls.mail_server),
            mail_port=int(get("MAIL_PORT", str(cls.mail_port))),
            mail_use_tls=_flag(get("MAIL_USE_TLS", "false")),
            mail_use_ssl=_flag(get("MAIL_USE_SSL", "false")),
            mail_username=get("MAIL_USERNAME") or None,
            mail_password=get("MAIL_PASSWORD") or None,
            mail_default_sender=get("MAIL_DEFAULT_SENDER", cls.mail_default_sender),
            server_name=get("SERVER_NAME") or None,
            preferred_url_scheme=get("PREFERRED_URL_SCHEME", cls.preferred_url_scheme),
            port=int(get("PORT", str(cls.port))),
            app_name=get("APP_NAME", cls.app_name),
            reset_token_minutes=int(get("RESET_TOKEN_MINUTES", str(cls.reset_token_minutes))),
            smtp_timeout_seconds=float(get("SMTP_TIMEOUT", str(cls.smtp_timeout_seconds))),
            task_soft_time_limit=int(get("TASK_SOFT_TIME_LIMIT", str(cls.task_soft_time_limit))),
            task_time_limit=int(get("TASK_TIME_LIMIT", str(cls.task_time_limit))),
            broker_visibility_timeout=int(
                get("BROKER_VISIBILITY_TIMEOUT", str(cls.broker_visibility_timeout))
            ),
            publish_timeout_seconds=float(
                get("PUBLISH_TIMEOUT", str(cls.publish_timeout_seconds))
            ),
            worker_concurrency=int(get("WORKER_CONCURRENCY") or 0) or None,
            worker_prefetch_multiplier=int(
                get("WORKER_PREFETCH_MULTIPLIER", str(cls.worker_prefetch_multiplier))
            ),
            task_events=_flag(get("TASK_EVENTS", "false")),
            outbox_relay_interval=float(
                get("OUTBOX_RELAY_INTERVAL", str(cls.outbox_relay_interval))
            ),
            outbox_stale_after=int(get("OUTBOX_STALE_AFTER", str(cls.outbox_stale_after))),
            retry_backoff_base=float(get("RETRY_BACKOFF_BASE", str(cls.retry_backoff_base))),
            retry_backoff_max=float(get("RETRY_BACKOFF_MAX", str(cls.retry_backoff_max))),
            delivery_max_attempts=int(
                get("DELIVERY_MAX_ATTEMPTS", str(cls.delivery_max_attempts))
            ),
            secret_key_fallbacks=_list(get("SECRET_KEY_FALLBACKS")),
            ratelimit_enabled=_flag(get("RATELIMIT_ENABLED", "true")),
            ratelimit_storage_uri=get("RATELIMIT_STORAGE_URI") or None,
            ratelimit_reset_request_per_ip=get(
                "RATELIMIT_RESET_REQUEST_PER_IP", cls.ratelimit_reset_request_per_ip
            ),
            ratelimit_reset_request_per_email=get(
                "RATELIMIT_RESET_REQUEST_PER_EMAIL", cls.ratelimit_reset_request_per_email
            ),
            ratelimit_reset_token_per_ip=get(
                "RATELIMIT_RESET_TOKEN_PER_IP", cls.ratelimit_reset_token_per_ip
            ),
            ratelimit_register_per_ip=get(
                "RATELIMIT_REGISTER_PER_IP", cls.ratelimit_register_per_ip
            ),
            trusted_hosts=_list(get("TRUSTED_HOSTS")),
            trusted_proxies=int(get("TRUSTED_PROXIES", "0")),
            session_cookie_secure=_optional_flag(get("SESSION_COOKIE_SECURE")),
            metrics_token=get("METRICS_TOKEN") or None,
            mail_ca_file=get("MAIL_CA_FILE") or None,
            mail_allow_plaintext_auth=_flag(get("MAIL_ALLOW_PLAINTEXT_AUTH", "false")),
            ratelimit_login_per_ip=get("RATELIMIT_LOGIN_PER_IP", cls.ratelimit_login_per_ip),
            ratelimit_login_per_username=get(
                "RATELIMIT_LOGIN_PER_USERNAME", cls.ratelimit_login_per_username
            ),
            password_hash_method=get("PASSWORD_HASH_METHOD", cls.password_hash_method),
            session_redis_url=get("SESSION_REDIS_URL") or None,
            session_lifetime_hours=int(
                get("SESSION_LIFETIME_HOURS", str(cls.session_lifetime_hours))
            ),
            outbox_retention_hours=float(
                get("OUTBOX_RETENTION_HOURS", str(cls.outbox_retention_hours))
            ),
            email_send_rate=float(get("EMAIL_SEND_RATE") or 0) or None,
            outbox_stall_after=int(get("OUTBOX_STALL_AFTER", str(cls.outbox_stall_after))),
            redis_sentinel_master=get("REDIS_SENTINEL_MASTER", cls.redis_sentinel_master),
            redis_sentinel_password=get("REDIS_SENTINEL_PASSWORD") or None,
        )

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def is_development(self) -> bool:
        return self.env in {"development", "testing"}

    def check_secret_key(self) -> None:
        """Refuse the well-known development key anywhere it could protect real accounts."""
        if not self.is_development and self.secret_key == DEV_SECRET_KEY:
            raise ConfigError("SECRET_KEY must be set outside development (APP_ENV=production)")

    def check_link_settings(self) -> None:
        """The worker builds absolute links; refuse to guess the host outside development."""
        if self.is_development:
            return
        if not self.server_name:
            raise ConfigError("SERVER_NAME must be set outside development: reset links need it")
        if self.preferred_url_scheme not in {"http", "https"}:
            raise ConfigError("PREFERRED_URL_SCHEME must be http or https")

    @property
    def delivery_lease_seconds(self) -> int:
        """How long a claimed outbox row belongs to one worker: past the hard time limit,
        after which the attempt is certainly over and the row may be claimed again."""
        return self.task_time_limit + LEASE_MARGIN_SECONDS

    def check_delivery_timing(self) -> None:
        """Refuse timeouts that would let two workers send the same email at once."""
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ConfigError("TASK_SOFT_TIME_LIMIT must be below TASK_TIME_LIMIT")
        if self.broker_visibility_timeout < self.delivery_lease_seconds:
            raise ConfigError(
                "BROKER_VISIBILITY_TIMEOUT must be at least TASK_TIME_LIMIT + "
                f"{LEASE_MARGIN_SECONDS}: a running task must not be handed to another worker"
            )
        if self.outbox_relay_interval <= 0 or self.outbox_stale_after <= 0:
            raise ConfigError("OUTBOX_RELAY_INTERVAL and OUTBOX_STALE_AFTER must be positive")

    def check_mail_security(self) -> None:
        """Refuse a relay password that would cross the network in clear, and a private CA
        the worker could not load (every TLS connection would fail, one email at a time)."""
        encrypted = self.mail_use_tls or self.mail_use_ssl
        if self.mail_username and not encrypted and not self.mail_allow_plaintext_auth:
            raise ConfigError(
                "MAIL_USERNAME is set but MAIL_USE_TLS and MAIL_USE_SSL are off: the SMTP "
                "password would be sent in clear; turn TLS on, or set "
                "MAIL_ALLOW_PLAINTEXT_AUTH=true for a relay on a trusted network"
            )
        if self.mail_ca_file:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(self.mail_ca_file)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ConfigError(f"MAIL_CA_FILE={self.mail_ca_file} is not a readable PEM "
                                  f"CA bundle ({type(exc).__name__})") from None

    @property
    def allowed_hosts(self) -> list[str] | None:
        """Host names the web tier answers to (Flask's TRUSTED_HOSTS); None accepts any.

        Outside development the default is SERVER_NAME's host plus the loopback names that
        health checks use. TRUSTED_HOSTS replaces that list; `*` turns the check off.
        """
        if self.trusted_hosts == ("*",):
            return None
        if self.trusted_hosts:
            return list(self.trusted_hosts)
        if self.is_development or not self.server_name:
            return None
        return [self.server_name.rsplit(":", 1)[0], "localhost", "127.0.0.1"]

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS: on by default in production when links use https."""
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return not self.is_development and self.preferred_url_scheme == "https"

    @property
    def link_base_url(self) -> str:
        """Scheme and host of the links the worker writes into emails."""
        host = self.server_name or f"127.0.0.1:{self.port}"
        scheme = self.preferred_url_scheme if self.server_name else "http"
        return f"{scheme}://{host}"

    def flask_config(self) -> dict[str, Any]:
        """The Flask config keys that Flask and its extensions read."""
        return {
            "SECRET_KEY": self.secret_key,
            "TESTING": self.env == "testing",
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(self.database_url),
            "MAIL_SERVER": self.mail_server,
            "MAIL_PORT": self.mail_port,
            "MAIL_USE_TLS": self.mail_use_tls,
            "MAIL_USE_SSL": self.mail_use_ssl,
            "MAIL_USERNAME": self.mail_username,
            "MAIL_PASSWORD": self.mail_password,
            "MAIL_DEFAULT_SENDER": self.mail_default_sender,
            # Flask-Mail suppresses sending when TESTING is on; the tests choose for themselves.
            "MAIL_SUPPRESS_SEND": False,
            "PREFERRED_URL_SCHEME": self.preferred_url_scheme,
            "MAX_CONTENT_LENGTH": 64 * 1024,
            "APP_NAME": self.app_name,
            "SETTINGS": self,
            # Old keys still verify sessions (Flask) and reset links (shared.tokens).
            "SECRET_KEY_FALLBACKS": list(self.secret_key_fallbacks),
            "TRUSTED_HOSTS": self.allowed_hosts,
            "SESSION_COOKIE_SECURE": self.secure_cookies,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "REMEMBER_COOKIE_SECURE": self.secure_cookies,
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SAMESITE": "Lax",
            "RATELIMIT_ENABLED": self.ratelimit_enabled,
            "RATELIMIT_STORAGE_URI": self.ratelimit_storage_uri or self.redis_url,
        }


def engine_options(database_url: str) -> dict[str, Any]:
    """SQLite is shared by two processes in development: wait for locks instead of failing."""
    # hide_parameters keeps addresses and hashes out of error messages and logs.
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}, "hide_parameters": True}
    return {"pool_pre_ping": True, "hide_parameters": True}


def _load_dotenv() -> None:
    try:
        from dotenv import load_dotenv
    except ImportError:  # pragma: no cover - python-dotenv is a declared dependency
        return
    load_dotenv(override=False)
