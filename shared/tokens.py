"""Password-reset tokens: PyJWT, HS256 pinned, short-lived, bound to the current password.

The token carries a fingerprint of the account's password hash, so it stops working the
moment the password changes: once it has been used, or after any other change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from shared.clock import utcnow

RESET_PURPOSE = "reset_password"
ALGORITHM = "HS256"


class InvalidResetToken(Exception):
    """The link cannot be used: tampered, malformed, for another purpose, or stale."""


class ExpiredResetToken(InvalidResetToken):
    """The link was genuine but its time is up."""


@dataclass(frozen=True)
class ResetClaims:
    user_id: int
    password_fingerprint: str


def _signing_key(secret_key: str) -> bytes:
    """A key for this purpose only, derived so a token is never valid for another use."""
    return hmac.new(secret_key.encode(), b"password-reset-token", hashlib.sha256).digest()


def password_fingerprint(secret_key: str, password_hash: str) -> str:
    digest = hmac.new(_signing_key(secret_key), password_hash.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def issue_reset_token(
    secret_key: str,
    user_id: int,
    password_hash: str,
    ttl: timedelta,
    now: datetime | None = None,
) -> str:
    issued = now or utcnow()
    claims = {
        "sub": str(user_id),
        "purpose": RESET_PURPOSE,
        "pwd": password_fingerprint(secret_key, password_hash),
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, _signing_key(secret_key), algorithm=ALGORITHM)


def read_reset_token(secret_key: str, token: str) -> ResetClaims:
    """Verify signature, expiry and purpose. Raise `InvalidResetToken` on anything else."""
    try:
        claims = jwt.decode(
            token,
            _signing_key(secret_key),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "purpose", "pwd"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ExpiredResetToken("expired") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidResetToken(type(exc).__name__) from exc
    if claims.get("purpose") != RESET_PURPOSE:
        raise InvalidResetToken("wrong purpose")
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise InvalidResetToken("bad subject") from exc
    fingerprint = claims["pwd"]
    if not isinstance(fingerprint, str):
        raise InvalidResetToken("bad fingerprint")
    return ResetClaims(user_id=user_id, password_fingerprint=fingerprint)


def token_matches_password(secret_key: str, claims: ResetClaims, password_hash: str) -> bool:
    expected = password_fingerprint(secret_key, password_hash)
    return hmac.compare_digest(expected, claims.password_fingerprint)
