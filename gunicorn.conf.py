"""gunicorn settings for the web tier (`gunicorn --config gunicorn.conf.py web.wsgi:app`).

The bind address stays on the command line, where docker-compose.yml shows it. Workers
come from WEB_CONCURRENCY (gunicorn reads it itself). The access log goes to stdout with
reset tokens cut out: a token is a password for ten minutes, and it travels in the path of
the reset link and in the Referer of the form posted from that page.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

from shared.contract import RESET_PASSWORD_PATH

TOKEN_IN_PATH = re.compile(re.escape(RESET_PASSWORD_PATH.split("<token>")[0]) + r"[^\s/?#\"]+")
REDACTED = RESET_PASSWORD_PATH.replace("<token>", "[redacted]")


def redact(value: Any) -> Any:
    return TOKEN_IN_PATH.sub(REDACTED, value) if isinstance(value, str) else value


class RedactingLogger(Logger):
    """gunicorn's logger, with reset tokens removed from every access-log field."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) for key, value in atoms.items()}


logger_class = RedactingLogger
accesslog = "-"
errorlog = "-"
loglevel = "info"
# A request that takes this long is stuck (the web tier never talks SMTP).
timeout = 30
graceful_timeout = 20
