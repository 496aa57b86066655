"""The WSGI entry point: `gunicorn web.wsgi:app`, configured only by the environment."""

from web import create_app

app = create_app()
