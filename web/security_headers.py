"""Security headers on every response, error pages and static files included.

- Content-Security-Policy: scripts, styles, fonts and images from this origin only, no inline
  script, no plugins, forms post only here, and no framing (with X-Frame-Options for old
  browsers).
- Referrer-Policy `same-origin`: other sites never see our URLs in a Referer header, while our
  own form posts still carry one, which Flask-WTF requires over HTTPS (it refuses a POST
  without a same-origin Referer). `no-referrer` would break that check.
- Strict-Transport-Security in production when links use https.
"""

from __future__ import annotations

from flask import Flask, Response

from shared.config import Settings

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000; includeSubDomains"


def init_security_headers(app: Flask, settings: Settings) -> None:
    headers = dict(SECURITY_HEADERS)
    if not settings.is_development and settings.preferred_url_scheme == "https":
        headers["Strict-Transport-Security"] = HSTS

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response


def no_store(response: Response) -> Response:
    """For pages that hold or follow from a reset link: never kept by a browser or proxy."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
