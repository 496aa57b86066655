"""Reset tokens: only a genuine, live, reset-purpose token for the current password passes."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from shared.clock import utcnow
from shared.tokens import (
    ExpiredResetToken,
    InvalidResetToken,
    _signing_key,
    issue_reset_token,
    read_reset_token,
    token_matches_password,
)

SECRET = "a-secret-key-for-the-token-tests-0123456789"
HASH = "scrypt:32768:8:1$salt$hash"
TTL = timedelta(minutes=10)


def test_valid_token_round_trips():
    token = issue_reset_token(SECRET, 42, HASH, TTL)
    claims = read_reset_token(SECRET, token)
    assert claims.user_id == 42
    assert token_matches_password(SECRET, claims, HASH)


def test_token_dies_with_the_password_it_was_issued_for():
    claims = read_reset_token(SECRET, issue_reset_token(SECRET, 42, HASH, TTL))
    assert not token_matches_password(SECRET, claims, HASH + "changed")


def test_expired_token_is_refused_as_expired():
    token = issue_reset_token(SECRET, 1, HASH, TTL, now=utcnow() - timedelta(minutes=11))
    with pytest.raises(ExpiredResetToken):
        read_reset_token(SECRET, token)


def test_token_signed_with_another_key_is_refused():
    token = issue_reset_token("another-secret-key-entirely-0123456789", 1, HASH, TTL)
    with pytest.raises(InvalidResetToken) as info:
        read_reset_token(SECRET, token)
    assert not isinstance(info.value, ExpiredResetToken)


def test_token_for_another_purpose_is_refused():
    now = utcnow()
    claims = {"sub": "1", "purpose": "confirm_email", "pwd": "x", "iat": now, "exp": now + TTL}
    token = jwt.encode(claims, _signing_key(SECRET), algorithm="HS256")
    with pytest.raises(InvalidResetToken, match="purpose"):
        read_reset_token(SECRET, token)


def test_token_signed_with_the_raw_secret_key_is_refused():
    """Keys are derived per purpose: a token made with SECRET_KEY itself is not a reset token."""
    now = utcnow()
    claims = {"sub": "1", "purpose": "reset_password", "pwd": "x", "iat": now, "exp": now + TTL}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, token)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused():
    now = int(utcnow().timestamp())
    header = _b64({"alg": "none", "typ": "JWT"})
    payload = _b64({"sub": "1", "purpose": "reset_password", "pwd": "x", "iat": now,
                    "exp": now + 600})
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, f"{header}.{payload}.")


def test_tampered_payload_is_refused():
    token = issue_reset_token(SECRET, 1, HASH, TTL)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "2"
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, f"{header}.{_b64(claims)}.{signature}")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "..", "é.é.é", "x" * 5000])
def test_garbage_is_refused(garbage: str):
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, garbage)


def test_missing_claims_are_refused():
    now = utcnow()
    token = jwt.encode({"sub": "1", "exp": now + TTL}, _signing_key(SECRET), algorithm="HS256")
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, token)


def test_non_numeric_subject_is_refused():
    now = utcnow()
    claims = {"sub": "admin", "purpose": "reset_password", "pwd": "x", "iat": now,
              "exp": now + TTL}
    token = jwt.encode(claims, _signing_key(SECRET), algorithm="HS256")
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, token)
