"""gunicorn settings for the web tier (`gunicorn --config gunicorn.conf.py web.wsgi:app`).

`make web`, `make run` (scripts/run_local.py) and docker-compose.yml all start gunicorn with
this file. The bind address stays on the command line, where docker-compose.yml shows it.
Workers come from WEB_CONCURRENCY (gunicorn reads it itself). The access log goes to stdout;
reset tokens (a password for ten minutes, in the path of the reset link and in the Referer
of the form posted from that page) are cut out of it by the logging filter the app installs
on gunicorn's loggers (web/log_redaction.py).
"""

accesslog = "-"
errorlog = "-"
loglevel = "info"
# A worker whose event loop has not come round for this long is stuck, and is replaced (the
# web tier never talks SMTP). With gevent it bounds a blocked worker, not one slow request:
# nginx bounds those (proxy_read_timeout in deploy/nginx/microblog.conf).
timeout = 30
graceful_timeout = 20

# Idle and slow clients must not take the site down when gunicorn is reached directly
# (behind nginx they never reach it: nginx buffers whole requests). A sync worker serves one
# connection at a time, so a few idle TCP connections stalled every worker for `timeout`.
# gthread is no cure either (measured, gunicorn 27): each new connection holds a pool thread
# for up to 5 s before it is parked in the poller, and a client that dribbles its headers
# holds one for good. gevent gives each connection a greenlet: waiting costs nothing, and a
# connection that has not sent a whole request head within `keepalive` seconds is closed.
# psycopg 3 (>= 3.1.14), redis-py and kombu cooperate with gevent's monkey-patching.
worker_class = "gevent"
worker_connections = 1000
keepalive = 5

# gunicorn >= 25.1 opens a control socket at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl,
# else ~/.gunicorn/gunicorn.ctl): each new gunicorn on the host takes it over, and the first
# to stop deletes it, so `gunicornc` would steer whichever started last. Nothing here uses it.
control_socket_disable = True

def on_starting(server: object) -> None:
    """Bad settings stop the master before any worker boots: one line, not one per worker."""
    from shared.config import Settings, exit_on_config_error

    with exit_on_config_error():
        Settings.from_env().check_web_settings()
