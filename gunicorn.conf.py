"""gunicorn settings for the web tier (`gunicorn --config gunicorn.conf.py web.wsgi:app`).

The bind address stays on the command line, where docker-compose.yml shows it. Workers
come from WEB_CONCURRENCY (gunicorn reads it itself). The access log goes to stdout; reset
tokens (a password for ten minutes, in the path of the reset link and in the Referer of the
form posted from that page) are cut out of it by the logging filter the app installs on
gunicorn's loggers (web/log_redaction.py).
"""

accesslog = "-"
errorlog = "-"
loglevel = "info"
# A request that takes this long is stuck (the web tier never talks SMTP).
timeout = 30
graceful_timeout = 20


def on_starting(server: object) -> None:
    """Bad settings stop the master before any worker boots: one line, not one per worker."""
    from shared.config import Settings, exit_on_config_error

    with exit_on_config_error():
        Settings.from_env().check_web_settings()
