"""Styled error pages: every failure gets a clear page, never a stack trace.

Pages never echo what the visitor sent (path, form, headers), so a token or an address in
a bad request cannot end up on a page, in a screenshot or in a shared link.
"""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadHost, HTTPException, InternalServerError, SecurityError

from shared.database import db

log = logging.getLogger(__name__)

EXPLANATIONS = {
    400: "The request could not be understood. Please go back and try again.",
    403: "You do not have access to this page.",
    404: "There is no page at this address.",
    405: "This page does not accept that kind of request.",
    413: "What you sent is too large.",
    429: "Too many attempts. Please wait a few minutes, then try again.",
    500: "Something went wrong on our side. It has been logged; please try again.",
}


TITLES = {429: "Too Many Attempts"}
UNTRUSTED_HOST_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Bad Request</title>'
    "</head><body><h1>Bad Request</h1><p>This site does not answer to that host name.</p>"
    "</body></html>\n"
)


def _page(code: int, title: str) -> ResponseReturnValue:
    if code == 429:
        return render_template("errors/too_many_attempts.html", title=TITLES[429]), code
    title = TITLES.get(code, title)
    message = EXPLANATIONS.get(code, "The request could not be completed.")
    return render_template("errors/error.html", title=title, code=code, message=message), code


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> ResponseReturnValue:
        message = "Your form expired or was sent from elsewhere. Please reload the page and retry."
        page = render_template("errors/error.html", title="Form Expired", code=400, message=message)
        return page, 400

    def unusable_host(error: HTTPException) -> ResponseReturnValue:
        """A Host outside TRUSTED_HOSTS or not a host name at all: no URL can be built for
        it, so the styled page (full of links) cannot be rendered. A plain one instead."""
        return UNTRUSTED_HOST_PAGE, 400, {"Content-Type": "text/html; charset=utf-8"}

    app.register_error_handler(SecurityError, unusable_host)
    app.register_error_handler(BadHost, unusable_host)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        code = error.code or 500
        return _page(code, error.name)

    @app.errorhandler(InternalServerError)
    def internal_error(error: InternalServerError) -> ResponseReturnValue:
        db.session.rollback()
        log.error("unhandled error: %s", type(error.original_exception).__name__)
        return _page(500, "Internal Server Error")
