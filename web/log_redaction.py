"""Keep reset tokens, passwords and full addresses out of every log line the web tier writes.

The app itself never logs them; this is the net under the servers' own logs. A reset link's
first request (`GET /reset_password/<token>`) reaches gunicorn's and werkzeug's access logs
before the app can redirect it away, so their loggers get a filter that rewrites the token,
secret-looking query parameters and email addresses, in the message and any traceback.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType

from flask import Flask, request


def _as_sent(character: str) -> str:
    """A character of a path as a request line may carry it: itself, or percent-encoded once
    or more (`%2F`, `%252F`), in either case: gunicorn decodes PATH_INFO once before routing."""
    return rf"(?:{re.escape(character)}|%(?:25)*{ord(character):02x})"


# Everything after the reset view's path segment, in every spelling that werkzeug still routes
# to the view (`/reset_password%2F<token>`, `/reset_p%61ssword/<token>`, `//reset_password//
# <token>`, which werkzeug redirects with the token) or that carries a token (`%252F`, `;`
# parameters, `\`). Matched without regard to case; a redaction too many costs nothing.
_RESET_SEGMENT = "".join(_as_sent(character) for character in "reset_password")
_SLASH = rf"(?:{_as_sent('/')}|{_as_sent(chr(92))})"
TOKEN_IN_PATH = re.compile(
    rf"(?P<head>{_RESET_SEGMENT}{_SLASH}+)[^\s\"'?#]+"  # /<token> and what follows it
    rf"|(?P<segment>{_RESET_SEGMENT});[^\s\"'?#]*",  # ;parameters, then anything
    re.IGNORECASE,
)
SECRET_PARAMETER = re.compile(
    r"((?:token|password|password2|csrf_token|email)=)[^&\s\"']+", re.IGNORECASE
)
EMAIL_ADDRESS = re.compile(
    r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
SERVER_LOGGERS = ("gunicorn.access", "gunicorn.error", "werkzeug", "flask-limiter", "web")


def redact(text: str) -> str:
    text = TOKEN_IN_PATH.sub(
        lambda match: (match["head"] or match["segment"]) + "[redacted]", text)
    text = SECRET_PARAMETER.sub(r"\1[redacted]", text)
    return EMAIL_ADDRESS.sub(r"\1***@\2", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(names: tuple[str, ...] = SERVER_LOGGERS) -> None:
    """Idempotent: one filter per logger however many apps a process creates."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def log_exceptions_without_messages(app: Flask) -> None:
    """Flask logs an unhandled exception with its message, and messages carry data (a value
    that failed to parse, an address in a query). Log where it failed, and its type, only."""

    def log_exception(
        exc_info: tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None],
    ) -> None:
        exc_type, _, tb = exc_info
        name = exc_type.__name__ if exc_type else "unknown"
        frames = "".join(traceback.format_tb(tb)) if tb else ""
        app.logger.error("Exception on %s [%s]: %s (message withheld)\n%s",
                         redact(request.path), request.method, name, frames.rstrip())

    app.log_exception = log_exception  # type: ignore[method-assign]
