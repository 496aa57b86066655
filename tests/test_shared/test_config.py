"""Settings come from the environment and refuse unsafe production set-ups."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.processes import BIN, ROOT

from shared.config import DEV_SECRET_KEY, ConfigError, Settings
from shared.contract import RESET_PASSWORD_PATH, reset_password_url
from shared.emails import mask_email, normalize_email

GOOD_KEY = "k3y-" + "0123456789abcdefghijklmnopqrstuvwxyz"
# What an operator gives the web tier in production, every check satisfied.
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": GOOD_KEY,
              "SERVER_NAME": "blog.example.org", "TRUSTED_PROXIES": "1"}


def production(**changes: str) -> Settings:
    return Settings.from_env({**PRODUCTION, **changes})


def test_reads_every_documented_variable():
    settings = Settings.from_env({
        "APP_ENV": "production", "SECRET_KEY": "s3cret", "DATABASE_URL": "postgresql+psycopg://db/x",
        "REDIS_URL": "redis://cache:6379/1", "MAIL_SERVER": "smtp.example.org", "MAIL_PORT": "587",
        "MAIL_USE_TLS": "true", "MAIL_USE_SSL": "0", "MAIL_USERNAME": "u", "MAIL_PASSWORD": "p",
        "MAIL_DEFAULT_SENDER": "Blog <blog@example.org>", "SERVER_NAME": "blog.example.org",
        "PREFERRED_URL_SCHEME": "https", "PORT": "8000", "SMTP_TIMEOUT": "3.5",
        "PUBLISH_TIMEOUT": "0.25", "SECRET_KEY_FALLBACKS": "old-1, old-2,",
        "EMAIL_SEND_RATE": "0", "REDIS_SENTINEL_PASSWORD": "sentinel-pw",
    })
    assert settings.mail_port == 587 and settings.mail_use_tls and not settings.mail_use_ssl
    assert settings.port == 8000
    assert settings.smtp_timeout_seconds == 3.5 and settings.publish_timeout_seconds == 0.25
    assert [key.get_secret_value() for key in settings.secret_key_fallbacks] == ["old-1", "old-2"]
    assert settings.email_send_rate is None
    assert settings.redis_sentinel_password.get_secret_value() == "sentinel-pw"
    assert settings.link_base_url == "https://blog.example.org"
    config = settings.flask_config()
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db/x"
    assert config["SECRET_KEY"] == "s3cret" and config["MAIL_PASSWORD"] == "p"
    assert config["SECRET_KEY_FALLBACKS"] == ["old-1", "old-2"]


@pytest.mark.parametrize(("word", "value"), [
    ("true", True), ("1", True), ("YES", True), (" on ", True),
    ("false", False), ("0", False), ("no", False), ("Off", False),
])
def test_booleans_take_the_usual_words(word: str, value: bool):
    assert Settings.from_env({"RATELIMIT_ENABLED": word}).ratelimit_enabled is value


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("RATELIMIT_ENABLED", "nope", "RATELIMIT_ENABLED: must be true or false"),
    ("MAIL_USE_TLS", "ture", "MAIL_USE_TLS: must be true or false"),
    ("MAIL_PORT", "25a", "MAIL_PORT: must be an integer, got '25a'"),
    ("WORKER_CONCURRENCY", "two", "WORKER_CONCURRENCY: must be an integer"),
    ("SMTP_TIMEOUT", "soon", "SMTP_TIMEOUT: must be a number"),
    ("TRUSTED_PROXIES", "yes", "TRUSTED_PROXIES: must be an integer"),
    ("APP_ENV", "testing", "APP_ENV: must be development or production"),
])
def test_a_bad_value_is_named_with_its_variable(variable: str, value: str, message: str):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({variable: value})
    assert message in str(refused.value)


def test_every_bad_variable_is_named_on_one_line():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"MAIL_PORT": "25a", "RATELIMIT_ENABLED": "nope", "PORT": "x"})
    message = str(refused.value)
    assert "\n" not in message
    assert all(name in message for name in ("MAIL_PORT", "RATELIMIT_ENABLED", "PORT"))


def test_testing_mode_cannot_come_from_the_environment():
    """APP_ENV=testing once accepted the development key and dropped the Secure cookie flag
    in what was really production; now only code (the test suite) turns testing on."""
    settings = Settings.from_env({"TESTING": "true"})
    assert not settings.testing and settings.flask_config()["TESTING"] is False
    assert Settings(env="development", testing=True).flask_config()["TESTING"] is True


def test_overrides_are_validated(settings: Settings):
    assert settings.with_overrides(mail_port="2525").mail_port == 2525
    with pytest.raises(ConfigError, match="MAIL_PORT"):
        settings.with_overrides(mail_port="25a")
    with pytest.raises(ConfigError, match="not a setting"):
        settings.with_overrides(mail_prot=25)


def test_secrets_are_read_from_files(tmp_path: Path):
    files = {}
    for name, text in [("SECRET_KEY", GOOD_KEY + "\n"), ("MAIL_PASSWORD", "mail pw\r\n"),
                       ("METRICS_TOKEN", "m" * 40), ("SECRET_KEY_FALLBACKS", "old-a,old-b\n"),
                       ("REDIS_SENTINEL_PASSWORD", "sentinel\n\n")]:
        (tmp_path / name).write_text(text, newline="")
        files[f"{name}_FILE"] = str(tmp_path / name)
    settings = Settings.from_env({**files, "APP_ENV": "production"})
    assert settings.secret_key.get_secret_value() == GOOD_KEY
    assert settings.mail_password.get_secret_value() == "mail pw"
    assert settings.metrics_token.get_secret_value() == "m" * 40
    assert [key.get_secret_value() for key in settings.secret_key_fallbacks] == ["old-a", "old-b"]
    # One trailing newline is the file's end; a second one is part of the secret.
    assert settings.redis_sentinel_password.get_secret_value() == "sentinel\n"


def test_a_secret_and_its_file_together_are_refused(tmp_path: Path):
    (tmp_path / "key").write_text(GOOD_KEY)
    with pytest.raises(ConfigError, match="SECRET_KEY and SECRET_KEY_FILE"):
        Settings.from_env({"SECRET_KEY": GOOD_KEY, "SECRET_KEY_FILE": str(tmp_path / "key")})


def test_an_unreadable_secret_file_is_named(tmp_path: Path):
    with pytest.raises(ConfigError, match="MAIL_PASSWORD_FILE: cannot read"):
        Settings.from_env({"MAIL_PASSWORD_FILE": str(tmp_path / "missing")})


def test_repr_and_str_hide_every_secret():
    values = {"SECRET_KEY": "the-signing-key-" + "s" * 20, "MAIL_PASSWORD": "mail-pw-value",
              "METRICS_TOKEN": "metrics-token-value", "SECRET_KEY_FALLBACKS": "fallback-value",
              "REDIS_SENTINEL_PASSWORD": "sentinel-pw-value",
              "DATABASE_URL": "postgresql+psycopg://microblog:db-pw-value@db/microblog"}
    settings = Settings.from_env(values)
    shown = repr(settings) + str(settings) + repr(settings.flask_config()["SETTINGS"])
    for secret in ("the-signing-key", "mail-pw-value", "metrics-token-value",
                   "fallback-value", "sentinel-pw-value", "db-pw-value"):
        assert secret not in shown
    assert "postgresql+psycopg://microblog:***@db/microblog" in shown


def test_production_refuses_the_default_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env({"APP_ENV": "production"}).check_secret_key()


def test_development_accepts_the_default_secret_key():
    Settings.from_env({"APP_ENV": "development"}).check_secret_key()
    assert Settings.from_env({"APP_ENV": "development"}).secret_key.get_secret_value() == \
        DEV_SECRET_KEY


def test_production_accepts_a_long_random_key():
    production().check_web_settings()
    production(TRUSTED_PROXIES="0").check_web_settings()


@pytest.mark.parametrize(("changes", "named"), [
    ({"SECRET_KEY": "too-short-" + "x" * 21}, "SECRET_KEY: must be at least 32 characters"),
    ({"SECRET_KEY": "change-me"}, "SECRET_KEY: is a well-known placeholder"),
    ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY: is a well-known placeholder"),
    ({"SECRET_KEY": "please-change-me-before-going-live-0123"}, "SECRET_KEY: is a well-known"),
    ({"SECRET_KEY_FALLBACKS": f"{GOOD_KEY}x,short"}, "SECRET_KEY_FALLBACKS[1]: must be"),
    ({"SECRET_KEY_FALLBACKS": "changeme"}, "SECRET_KEY_FALLBACKS[0]: is a well-known"),
    ({"METRICS_TOKEN": "secret"}, "METRICS_TOKEN: is a well-known placeholder"),
    ({"METRICS_TOKEN": "abc123"}, "METRICS_TOKEN: must be at least 32 characters"),
    ({"TRUSTED_PROXIES": ""}, "TRUSTED_PROXIES: must be set in production"),
    ({"SESSION_COOKIE_SECURE": "false"}, "SESSION_COOKIE_SECURE"),
])
def test_production_refuses_weak_settings(changes: dict[str, str], named: str):
    with pytest.raises(ConfigError) as refused:
        production(**changes).check_web_settings()
    assert named in str(refused.value)
    for value in changes.values():
        if len(value) > 6:  # the message may say "secret"; it never quotes a value
            assert value not in str(refused.value)


def test_production_cookies_are_secure_whatever_else_is_set():
    assert production().secure_cookies
    assert production(PREFERRED_URL_SCHEME="http").secure_cookies
    assert not Settings(env="development").secure_cookies


def test_production_worker_needs_a_server_name():
    with pytest.raises(ConfigError, match="SERVER_NAME"):
        Settings.from_env({"APP_ENV": "production", "SECRET_KEY": "x"}).check_link_settings()


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError):
        Settings.from_env({"APP_ENV": "staging-ish"})


def test_reset_link_uses_the_contract_path():
    assert RESET_PASSWORD_PATH == "/reset_password/<token>"
    assert reset_password_url("https://h.example/", "abc") == "https://h.example/reset_password/abc"


def test_emails_are_normalized_and_masked():
    assert normalize_email("  Susan@Example.COM ") == "susan@example.com"
    assert mask_email("susan@example.com") == "s***@example.com"
    assert mask_email("not-an-address") == "***"


# --- Entry points: an operator's typo is one line on stderr, never a traceback. ---

ENTRY_POINTS = {
    "gunicorn": [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
                 "--bind", "127.0.0.1:0", "--workers", "2", "web.wsgi:app"],
    "flask": [str(BIN / "flask"), "--app", "web.wsgi", "routes"],
    "worker": [str(BIN / "celery"), "-A", "worker.celery_app:celery_app", "worker",
               "--pool", "solo"],
    "flower": [str(BIN / "celery"), "-A", "worker.celery_app:celery_app", "flower",
               f"--conf={ROOT / 'flowerconfig.py'}", "--address=127.0.0.1", "--port=0"],
}


def start(entry_point: str, env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    """Run an entry point the way its container does; its exit status and error lines."""
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(ENTRY_POINTS[entry_point], env={**base, **env}, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "configuration error" in line]
    return result.returncode, errors


@pytest.mark.parametrize("entry_point", ["gunicorn", "flask", "worker", "flower"])
def test_a_bad_variable_stops_each_entry_point_with_one_line(entry_point: str, tmp_path: Path):
    env = {**PRODUCTION, "SECRET_KEY": "not-shown-" + "v" * 30, "MAIL_PORT": "25a",
           "RATELIMIT_ENABLED": "nope", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    status, lines = start(entry_point, env, tmp_path)
    assert status != 0
    assert lines == ["microblog: configuration error: MAIL_PORT: must be an integer, got '25a'; "
                     "RATELIMIT_ENABLED: must be true or false (or 1/0, yes/no, on/off), "
                     "got 'nope'"]


@pytest.mark.parametrize("entry_point", ["gunicorn", "flask"])
def test_the_web_tier_refuses_a_weak_key_without_showing_it(entry_point: str, tmp_path: Path):
    env = {**PRODUCTION, "SECRET_KEY": "short-key-value", "TRUSTED_PROXIES": ""}
    status, lines = start(entry_point, env, tmp_path)
    assert status != 0 and len(lines) == 1
    assert "SECRET_KEY: must be at least 32 characters" in lines[0]
    assert "TRUSTED_PROXIES: must be set" in lines[0]
    assert "short-key-value" not in lines[0]


@pytest.mark.parametrize(("password", "problem"), [
    ("changeme", "is a well-known placeholder"),
    ("Tr0ub4dor&3", "must be at least 16 characters outside development"),
])
def test_flower_refuses_a_weak_password(password: str, problem: str, tmp_path: Path):
    env = {**PRODUCTION, "FLOWER_BASIC_AUTH": f"admin:{password}"}
    status, lines = start("flower", env, tmp_path)
    assert status != 0 and len(lines) == 1
    assert lines[0].startswith("microblog: configuration error: "
                               f"FLOWER_BASIC_AUTH (password of admin): {problem}")
    assert password not in lines[0]


def test_gunicorn_without_its_config_file_stops_instead_of_rebooting_workers(tmp_path: Path):
    """gunicorn started by hand without gunicorn.conf.py (every recipe here passes it, whose
    hook refuses in the master): the worker says it once and the master stops (gunicorn's
    "App failed to load"). One worker: with two, the second one's exit can reach the master
    while it is already halting for the first, and gunicorn itself then prints a traceback."""
    argv = [str(BIN / "gunicorn"), "--bind", "127.0.0.1:0", "--workers", "1", "web.wsgi:app"]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **PRODUCTION, "PORT": "5x"}
    result = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 4 and "Traceback" not in output
    errors = {line for line in output.splitlines() if "configuration error" in line}
    assert errors == {"microblog: configuration error: PORT: must be an integer, got '5x'"}
