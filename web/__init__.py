"""The web tier: accounts and the reset forms. It records and enqueues; it never sends mail."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.celery_factory import make_celery
from shared.config import Settings
from shared.database import db
from shared.passwords import init_password_hashing
from web.extensions import csrf, login_manager, migrate, register_user_loader
from web.log_redaction import install_log_redaction, log_exceptions_without_messages
from web.login_sessions import init_login_sessions
from web.rate_limits import init_rate_limits
from web.security_headers import init_security_headers


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    settings.check_web_settings()
    app = Flask(__name__)
    app.config.from_mapping(settings.flask_config())
    if settings.trusted_proxies:
        # Behind N reverse proxies: the client IP (rate limits) and scheme come from them.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    install_log_redaction()
    log_exceptions_without_messages(app)
    register_extensions(app, settings)
    register_blueprints(app)
    register_commands(app)
    configure_logging(app)
    return app


def register_extensions(app: Flask, settings: Settings) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=migrations_directory())
    csrf.init_app(app)
    login_manager.init_app(app)
    register_user_loader()
    init_login_sessions(app, settings)
    init_password_hashing(app, settings)
    init_rate_limits(app, settings)
    init_security_headers(app, settings)
    app.extensions["celery"] = make_celery(settings, "web", publisher_only=True)


def register_blueprints(app: Flask) -> None:
    from web.auth import bp as auth_bp
    from web.errors import register_error_handlers
    from web.health import bp as health_bp
    from web.main import bp as main_bp
    from web.metrics import bp as metrics_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(metrics_bp)
    register_error_handlers(app)


def register_commands(app: Flask) -> None:
    from web.cli import deliveries
    from web.sessions_cli import sessions

    app.cli.add_command(deliveries)
    app.cli.add_command(sessions)


def configure_logging(app: Flask) -> None:
    if not app.debug and not app.testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )


def migrations_directory() -> str:
    from pathlib import Path

    import shared

    return str(Path(shared.__file__).parent / "migrations")
