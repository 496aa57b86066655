"""Settings come from the environment and refuse unsafe production set-ups."""

from __future__ import annotations

import pytest

from shared.config import DEV_SECRET_KEY, ConfigError, Settings
from shared.contract import RESET_PASSWORD_PATH, reset_password_url
from shared.emails import mask_email, normalize_email


def test_reads_every_documented_variable():
    settings = Settings.from_env({
        "APP_ENV": "production", "SECRET_KEY": "s3cret", "DATABASE_URL": "postgresql+psycopg://db/x",
        "REDIS_URL": "redis://cache:6379/1", "MAIL_SERVER": "smtp.example.org", "MAIL_PORT": "587",
        "MAIL_USE_TLS": "true", "MAIL_USE_SSL": "0", "MAIL_USERNAME": "u", "MAIL_PASSWORD": "p",
        "MAIL_DEFAULT_SENDER": "Blog <blog@example.org>", "SERVER_NAME": "blog.example.org",
        "PREFERRED_URL_SCHEME": "https", "PORT": "8000",
    })
    assert settings.mail_port == 587 and settings.mail_use_tls and not settings.mail_use_ssl
    assert settings.port == 8000
    assert settings.link_base_url == "https://blog.example.org"
    assert settings.flask_config()["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db/x"


def test_production_refuses_the_default_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env({"APP_ENV": "production"}).check_secret_key()


def test_development_accepts_the_default_secret_key():
    Settings.from_env({"APP_ENV": "development"}).check_secret_key()
    assert Settings.from_env({"APP_ENV": "development"}).secret_key == DEV_SECRET_KEY


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
