"""Device cookies (OWASP): a browser that signed in to a name may keep trying it under attack.

After a successful sign-in the browser gets a signed cookie naming that user name (as a
keyed hash) and a random nonce. While it holds one for the name being tried, the attempt is
exempt from the per-name limit and counts against the nonce instead (web/rate_limits.py):
a stranger who floods a name cannot lock its owner out of a browser they already use, and
a stolen cookie is worth no more guesses than the per-name limit allows. Every successful
sign-in replaces the cookie with a fresh nonce. So does spending a reset link: the
emailed link vouches for the browser, which can then sign in while the name is flooded.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Request, Response, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from web.rate_limits import username_key

COOKIE_NAME = "sign_in_device"
COOKIE_PATH = "/login"
MAX_AGE = timedelta(days=180)


def _serializer() -> URLSafeTimedSerializer:
    # Signed with SECRET_KEY; cookies signed with a fallback key still verify.
    keys = [*current_app.config["SECRET_KEY_FALLBACKS"], current_app.config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt="sign-in-device")


def device_for(request: Request, username: str) -> str | None:
    """The nonce of this browser's device cookie if it was issued for `username`, else None."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    try:
        claims = _serializer().loads(cookie, max_age=int(MAX_AGE.total_seconds()))
    except BadSignature:  # tampered, expired (a subclass) or not ours
        return None
    if not isinstance(claims, dict) or claims.get("u") != username_key(username):
        return None
    nonce = claims.get("n")
    return nonce if isinstance(nonce, str) and nonce else None


def remember_device(response: Response, username: str) -> Response:
    """Give the browser a fresh device cookie for `username` (it just signed in)."""
    value = _serializer().dumps({"u": username_key(username), "n": secrets.token_urlsafe(16)})
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=MAX_AGE,
        path=COOKIE_PATH,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Strict",  # only ever sent by this site's own sign-in form
    )
    return response
