"""Password-reset tokens: PyJWT, HS256 pinned, short-lived, single-use, newest wins.

A token carries three things that tie it to the account's state when it was minted:

- `pwd`, a keyed fingerprint of the password hash: any password change kills it;
- `gen`, the account's reset generation (`User.bump_reset_generation`, called by the worker
  when it mints): a newer link for the same account kills it, and so does spending it, since
  the web tier bumps the generation in the same conditional UPDATE that sets the password;
- `exp`, counted from the request (10 minutes by default).

Keys rotate: a token is signed with the current SECRET_KEY and verified with it or any of
SECRET_KEY_FALLBACKS, so links already in inboxes keep working through a rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt

from shared.clock import utcnow

RESET_PURPOSE = "reset_password"
ALGORITHM = "HS256"
# Far longer than any token we mint; anything bigger is refused before parsing.
MAX_TOKEN_LENGTH = 2048
REQUIRED_CLAIMS = ["exp", "iat", "sub", "purpose", "pwd", "gen", "jti"]
MAX_INT = 2**31 - 1  # ids and generations are 32-bit integer columns


class InvalidResetToken(Exception):
    """The link cannot be used: tampered, malformed, for another purpose, or stale."""


class ExpiredResetToken(InvalidResetToken):
    """The link was genuine but its time is up."""


@dataclass(frozen=True)
class ResetClaims:
    user_id: int
    password_fingerprint: str
    generation: int
    jti: str
    # The key that verified the signature: the fingerprint was made with the same one.
    verified_with: str = field(default="", repr=False, compare=False)

    def matches_password(self, password_hash: str) -> bool:
        return token_matches_password(self.verified_with, self, password_hash)


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
    *,
    generation: int,
) -> str:
    """Mint a link token. `generation` is what `User.bump_reset_generation` just returned."""
    issued = now or utcnow()
    claims = {
        "sub": str(user_id),
        "purpose": RESET_PURPOSE,
        "pwd": password_fingerprint(secret_key, password_hash),
        "gen": generation,
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, _signing_key(secret_key), algorithm=ALGORITHM)


def _decode(token: str, keys: Sequence[str]) -> tuple[dict[str, object], str]:
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                _signing_key(key),
                algorithms=[ALGORITHM],
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidSignatureError:
            continue  # maybe signed with an older key
        except jwt.ExpiredSignatureError as exc:  # only raised once the signature checked out
            raise ExpiredResetToken("expired") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidResetToken(type(exc).__name__) from exc
        return claims, key
    raise InvalidResetToken("InvalidSignatureError")


def read_reset_token(
    secret_key: str, token: str, fallbacks: Sequence[str] = ()
) -> ResetClaims:
    """Verify signature (current key, then the fallbacks), expiry, purpose and claim types.

    Raise `InvalidResetToken` (or `ExpiredResetToken`) on anything else. Whether the token
    is still live for its account (password, generation) is the caller's check.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidResetToken("malformed")
    claims, key = _decode(token, [secret_key, *fallbacks])
    if claims.get("purpose") != RESET_PURPOSE:
        raise InvalidResetToken("wrong purpose")
    subject, fingerprint, generation, jti = (
        claims["sub"], claims["pwd"], claims["gen"], claims["jti"],
    )
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()
            and 0 < int(subject) <= MAX_INT):
        raise InvalidResetToken("bad subject")
    if not isinstance(fingerprint, str) or not isinstance(jti, str):
        raise InvalidResetToken("bad claims")
    if not (type(generation) is int and 0 < generation <= MAX_INT):
        raise InvalidResetToken("bad generation")
    return ResetClaims(
        user_id=int(subject),
        password_fingerprint=fingerprint,
        generation=generation,
        jti=jti,
        verified_with=key,
    )


def token_matches_password(secret_key: str, claims: ResetClaims, password_hash: str) -> bool:
    expected = password_fingerprint(secret_key, password_hash)
    return hmac.compare_digest(expected, claims.password_fingerprint)
