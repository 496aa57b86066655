"""Styled error pages: every failure gets a clear page, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from shared.database import db

log = logging.getLogger(__name__)

EXPLANATIONS = {
    400: "The request could not be understood. Please go back and try again.",
    403: "You do not have access to this page.",
    404: "There is no page at this address.",
    405: "This page does not accept that kind of request.",
    413: "What you sent is too large.",
    429: "Too many attempts. Please wait a little and try again.",
    500: "Something went wrong on our side. It has been logged; please try again.",
}


def _page(code: int, title: str) -> ResponseReturnValue:
    if code == 429:
        return render_template("errors/too_many_attempts.html", title="Too Many Attempts"), code
    message = EXPLANATIONS.get(code, "The request could not be completed.")
    return render_template("errors/error.html", title=title, code=code, message=message), code


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> ResponseReturnValue:
        message = "Your form expired or was sent from elsewhere. Please reload the page and retry."
        page = render_template("errors/error.html", title="Form Expired", code=400, message=message)
        return page, 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        code = error.code or 500
        return _page(code, error.name)

    @app.errorhandler(InternalServerError)
    def internal_error(error: InternalServerError) -> ResponseReturnValue:
        db.session.rollback()
        log.error("unhandled error: %s", type(error.original_exception).__name__)
        return _page(500, "Internal Server Error")
