"""Settings for both tiers, read once from the environment (12-factor).

Every knob the operator can turn is an environment variable documented in `.env.example`;
pydantic-settings parses them strictly and names every bad one. Secrets are `SecretStr`
(never in a repr or a log line) and can come from files (`SECRET_KEY_FILE`, Docker and
Kubernetes secrets). Tests build `Settings` from keyword arguments or a plain mapping
instead of touching `os.environ`.
"""

from __future__ import annotations

import os
import re
import ssl
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasGenerator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"
ENVIRONMENTS = ("development", "production")
# A claimed outbox row stays with its worker this long past the task's hard time limit.
LEASE_MARGIN_SECONDS = 2
# Keys and tokens a machine reads (SECRET_KEY, METRICS_TOKEN): 32 characters at least.
MIN_SECRET_LENGTH = 32
# Values copied from examples and tutorials; refused outside development whatever their length.
PLACEHOLDER_SECRETS = frozenset({
    DEV_SECRET_KEY, "change-me", "changeme", "change_me", "changeit", "secret", "secret-key",
    "secretkey", "secret_key", "password", "passw0rd", "admin", "test", "testing", "dev",
    "development", "default", "example", "your-secret-key", "replace-me", "xxx", "token",
    "metrics-token", "flower", "microblog",
})
# Fragments that mark a value as a placeholder wherever they appear in it.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "do-not-use", "replace-me",
                       "placeholder", "your-secret")
# The variables that hold secrets: each may be given as a file path in <NAME>_FILE instead.
SECRET_VARIABLES = ("SECRET_KEY", "SECRET_KEY_FALLBACKS", "MAIL_PASSWORD", "METRICS_TOKEN",
                    "REDIS_SENTINEL_PASSWORD")
# The exit status of an entry point refused by its settings. 4 is also gunicorn's "App
# failed to load": its master then stops instead of restarting the workers forever.
EXIT_CONFIG_ERROR = 4

FLAG_WORDS = {"true": True, "1": True, "yes": True, "on": True,
              "false": False, "0": False, "no": False, "off": False}


class ConfigError(RuntimeError):
    """The environment does not describe a configuration that is safe to run."""


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word not in FLAG_WORDS:
            raise PydanticCustomError("flag", "must be true or false (or 1/0, yes/no, on/off)")
        return FLAG_WORDS[word]
    return value


def _comma_separated(value: Any) -> Any:
    """A comma-separated variable as a tuple, blanks dropped."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _zero_is_off(value: Any) -> Any:
    return value or None


def _lowercase(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Flag = Annotated[bool, BeforeValidator(_flag)]
OptionalFlag = Annotated[bool | None, BeforeValidator(_flag)]
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]
Secrets = Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_comma_separated)]
Number = Annotated[float, Field(allow_inf_nan=False)]
# 0 and empty both mean "off" for these.
OptionalCount = Annotated[int | None, AfterValidator(_zero_is_off)]
OptionalRate = Annotated[float | None, Field(allow_inf_nan=False), AfterValidator(_zero_is_off)]
Environment = Annotated[Literal["development", "production"], BeforeValidator(_lowercase)]


class Settings(BaseSettings):
    """Each field is read from the variable of the same name in upper case (mail_port from
    MAIL_PORT) unless its alias says otherwise. Empty variables count as unset."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        case_sensitive=True,
        env_ignore_empty=True,
        validate_by_name=True,
        validate_by_alias=True,
        hide_input_in_errors=True,
        alias_generator=AliasGenerator(validation_alias=str.upper),
    )

    # development | production (APP_ENV): nothing else, so no value quietly weakens production.
    env: Environment = Field("production", validation_alias="APP_ENV")
    # The test suite's switch (Flask's TESTING); set in code only, never from the environment.
    testing: bool = False
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    database_url: str = "sqlite:///microblog.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    mail_server: str = "127.0.0.1"
    mail_port: int = 8025
    mail_use_tls: Flag = False
    mail_use_ssl: Flag = False
    mail_username: str | None = None
    mail_password: SecretStr | None = None
    mail_default_sender: str = "Microblog <no-reply@localhost>"
    server_name: str | None = None
    preferred_url_scheme: str = "https"
    port: int = 5000
    app_name: str = "Microblog"
    reset_token_minutes: int = 10
    smtp_timeout_seconds: Number = Field(10.0, validation_alias="SMTP_TIMEOUT")
    task_soft_time_limit: int = 15
    task_time_limit: int = 20
    broker_visibility_timeout: int = 30
    publish_timeout_seconds: Number = Field(0.5, validation_alias="PUBLISH_TIMEOUT")
    # The worker pool and Celery events (see shared/celery_factory.py for the measurements).
    worker_concurrency: OptionalCount = None  # None: two processes per core
    worker_prefetch_multiplier: int = 4
    task_events: Flag = False
    # The email outbox: how often the relay sweeps, when a waiting row counts as stuck,
    # and the retry policy for transient SMTP failures.
    outbox_relay_interval: Number = 5.0
    outbox_stale_after: int = 30
    retry_backoff_base: Number = 2.0
    retry_backoff_max: Number = 120.0
    delivery_max_attempts: int = 10
    # Reset-flow security (rate limits, key rotation, hosts, cookies).
    secret_key_fallbacks: Secrets = ()
    ratelimit_enabled: Flag = True
    ratelimit_storage_uri: str | None = None
    ratelimit_reset_request_per_ip: str = "10 per 15 minutes"
    ratelimit_reset_request_per_email: str = "3 per 15 minutes"
    ratelimit_reset_token_per_ip: str = "20 per 15 minutes"
    ratelimit_register_per_ip: str = "10 per hour"
    # Past this many reset requests from one IP nothing is recorded: a 429, so a flood cannot
    # grow the outbox without bound. Below it, over RATELIMIT_RESET_REQUEST_PER_IP, requests
    # are recorded as `throttled` and answered like any other.
    ratelimit_reset_request_ceiling_per_ip: str = "40 per 15 minutes"
    trusted_hosts: Names = ()
    # None: not set, which production refuses (0 says "no proxy" explicitly).
    trusted_proxies: int | None = None
    session_cookie_secure: OptionalFlag = None
    metrics_token: SecretStr | None = None  # Bearer token for the web tier's /metrics; None: off
    # SMTP transport security (verified TLS; AUTH never in clear unless allowed).
    mail_ca_file: str | None = None  # a private CA bundle trusted besides the system store
    mail_allow_plaintext_auth: Flag = False
    # Sign-in throttling and password hashing.
    ratelimit_login_per_ip: str = "20 per 5 minutes; 100 per hour"
    ratelimit_login_per_username: str = "10 per 5 minutes; 50 per hour; 100 per day"
    password_hash_method: str = "argon2id:m=19456,t=2,p=1"  # shared/passwords.py
    # How long a sign-in (its login_session row and remember-me cookie) lasts.
    session_lifetime_hours: int = 24 * 14
    # The outbox: retention of finished rows, a global send rate, the relay's sweep.
    outbox_retention_hours: Number = 7 * 24
    email_send_rate: OptionalRate = None  # emails per second across all workers; None: off
    outbox_stall_after: int = 120  # seconds a due row may wait before health says so
    # Redis Sentinel (REDIS_URL=sentinel://host:26379;sentinel://host2:26379/0).
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: SecretStr | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """SecretStr hides the secrets; this hides the passwords inside URLs."""
        for name, value in super().__repr_args__():
            yield name, _URL_PASSWORD.sub(r"\1***@", value) if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        **sources: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`Settings(...)` takes its arguments only; `from_env` is the one door to the
        environment, so a test never picks up the shell's variables by accident."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `environ` (default: the process environment plus `.env`).

        Raises ConfigError naming every bad variable, on one line.
        """
        if environ is None:
            _load_dotenv()
            environ = os.environ
        environ, problems = _read_secret_files(environ)
        values = _MappingSource(cls, environ)()
        values.pop("TESTING", None)
        try:
            settings = cls(**values)
        except ValidationError as error:
            problems += describe_validation_error(error)
        if problems:
            raise ConfigError("; ".join(problems))
        return settings

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated like the original."""
        try:
            return type(self)(**{**dict(self), **changes})
        except ValidationError as error:
            raise ConfigError("; ".join(describe_validation_error(error))) from None

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    def check_secret_key(self) -> None:
        """Refuse weak keys anywhere they could protect real accounts: SECRET_KEY and every
        SECRET_KEY_FALLBACKS entry sign or verify sessions and reset links."""
        _raise_if_any(self._secret_key_problems())

    def _secret_key_problems(self) -> list[str | None]:
        if self.is_development:
            return []
        problems = [weak_secret_problem("SECRET_KEY", self.secret_key.get_secret_value())]
        problems += [
            weak_secret_problem(f"SECRET_KEY_FALLBACKS[{index}]", key.get_secret_value())
            for index, key in enumerate(self.secret_key_fallbacks)
        ]
        return problems

    def check_web_settings(self) -> None:
        """What the web tier refuses to start with outside development, all on one line:
        the keys (as check_secret_key), a weak METRICS_TOKEN, an unset TRUSTED_PROXIES,
        cookies without the Secure flag."""
        if self.is_development:
            return
        problems = self._secret_key_problems()
        if self.metrics_token is not None:
            problems.append(weak_secret_problem("METRICS_TOKEN",
                                                self.metrics_token.get_secret_value()))
        if self.trusted_proxies is None:
            problems.append("TRUSTED_PROXIES: must be set in production: the number of "
                            "reverse proxies in front of the web tier (0 for none)")
        elif self.trusted_proxies < 0:
            problems.append("TRUSTED_PROXIES: must be 0 or more")
        if self.session_cookie_secure is False:
            problems.append("SESSION_COOKIE_SECURE: cookies are always Secure in production; "
                            "leave it unset")
        _raise_if_any(problems)

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
        """Cookies only over HTTPS: always in production; in development when asked."""
        if not self.is_development:
            return True
        return bool(self.session_cookie_secure)

    @property
    def link_base_url(self) -> str:
        """Scheme and host of the links the worker writes into emails."""
        host = self.server_name or f"127.0.0.1:{self.port}"
        scheme = self.preferred_url_scheme if self.server_name else "http"
        return f"{scheme}://{host}"

    def flask_config(self) -> dict[str, Any]:
        """The Flask config keys that Flask and its extensions read."""
        return {
            "SECRET_KEY": self.secret_key.get_secret_value(),
            "TESTING": self.testing,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(self.database_url),
            "MAIL_SERVER": self.mail_server,
            "MAIL_PORT": self.mail_port,
            "MAIL_USE_TLS": self.mail_use_tls,
            "MAIL_USE_SSL": self.mail_use_ssl,
            "MAIL_USERNAME": self.mail_username,
            "MAIL_PASSWORD": _reveal(self.mail_password),
            "MAIL_DEFAULT_SENDER": self.mail_default_sender,
            # Flask-Mail suppresses sending when TESTING is on; the tests choose for themselves.
            "MAIL_SUPPRESS_SEND": False,
            "PREFERRED_URL_SCHEME": self.preferred_url_scheme,
            "MAX_CONTENT_LENGTH": 64 * 1024,
            "APP_NAME": self.app_name,
            "SETTINGS": self,
            # Old keys still verify sessions (Flask) and reset links (shared.tokens).
            "SECRET_KEY_FALLBACKS": [key.get_secret_value() for key in self.secret_key_fallbacks],
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


def weak_secret_problem(name: str, value: str, min_length: int = MIN_SECRET_LENGTH) -> str | None:
    """Why `value` cannot protect anything in production, or None. Never quotes the value."""
    normalized = value.strip().lower()
    if normalized in PLACEHOLDER_SECRETS or any(m in normalized for m in PLACEHOLDER_MARKERS):
        return (f"{name}: is a well-known placeholder; generate one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'")
    if len(value) < min_length:
        return f"{name}: must be at least {min_length} characters outside development"
    return None


def describe_validation_error(error: ValidationError) -> list[str]:
    """One `VARIABLE: what is wrong` per bad field; inputs quoted only for non-secrets."""
    return [_describe(item) for item in error.errors(include_url=False)]


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """For entry points: bad settings end the process with one line on stderr and
    EXIT_CONFIG_ERROR, instead of a traceback an operator has to read from the bottom."""
    try:
        yield
    except (ConfigError, ValidationError) as error:
        problems = (describe_validation_error(error) if isinstance(error, ValidationError)
                    else [str(error)])
        print(f"microblog: configuration error: {'; '.join(problems)}", file=sys.stderr,
              flush=True)
        raise SystemExit(EXIT_CONFIG_ERROR) from None


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source reading a given mapping, not `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value for name, value in self._environ.items()
                if not (self.env_ignore_empty and value == "")}


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_MESSAGES = {
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "int_type": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "extra_forbidden": "is not a setting",
}


def _describe(item: Any) -> str:
    name = _variable_name(item["loc"][0]) if item["loc"] else "settings"
    if item["type"] == "literal_error":
        text = f"must be {item['ctx']['expected']}".replace("'", "")
    else:
        text = _MESSAGES.get(item["type"]) or item["msg"].removeprefix("Value error, ")
    value = item.get("input")
    if name.split("[")[0] not in SECRET_VARIABLES and isinstance(value, str | int | float):
        shown = str(value)
        text += f", got {shown[:40] + '...' if len(shown) > 40 else shown!r}"
    return f"{name}: {text}"


def _variable_name(location: int | str) -> str:
    field = Settings.model_fields.get(str(location))
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    return str(location)


def _read_secret_files(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Secrets given as files (`SECRET_KEY_FILE=/run/secrets/key`), the way Docker and
    Kubernetes mount them: the file's text less one trailing newline."""
    values, problems = dict(environ), []
    for name in SECRET_VARIABLES:
        path = environ.get(f"{name}_FILE", "")
        if not path:
            continue
        if environ.get(name, ""):
            problems.append(f"{name} and {name}_FILE: set one of them, not both")
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            problems.append(f"{name}_FILE: cannot read {path}: {reason}")
            continue
        values[name] = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    return values, problems


def _raise_if_any(problems: list[str | None]) -> None:
    found = [problem for problem in problems if problem]
    if found:
        raise ConfigError("; ".join(found))


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _load_dotenv() -> None:
    try:
        from dotenv import load_dotenv
    except ImportError:  # pragma: no cover - python-dotenv is a declared dependency
        return
    load_dotenv(override=False)
