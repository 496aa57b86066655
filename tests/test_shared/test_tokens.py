"""Reset tokens: only a genuine, live, reset-purpose token for the current password passes."""

from __future__ import annotations

import base64
import hashlib
import hmac
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
OLD_SECRET = "the-key-before-the-last-rotation-0123456789"
HASH = "scrypt:32768:8:1$salt$hash"
TTL = timedelta(minutes=10)


def claims_like_ours(**changes: object) -> dict[str, object]:
    now = utcnow()
    claims: dict[str, object] = {"sub": "1", "purpose": "reset_password", "pwd": "x", "gen": 1,
                                 "jti": "abc", "iat": now, "exp": now + TTL}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, _signing_key(secret), algorithm=algorithm)


def test_valid_token_round_trips():
    token = issue_reset_token(SECRET, 42, HASH, TTL, generation=7)
    claims = read_reset_token(SECRET, token)
    assert (claims.user_id, claims.generation) == (42, 7)
    assert len(claims.jti) == 16
    assert token_matches_password(SECRET, claims, HASH)
    assert claims.matches_password(HASH)


def test_each_token_has_its_own_id():
    first = read_reset_token(SECRET, issue_reset_token(SECRET, 1, HASH, TTL, generation=1))
    second = read_reset_token(SECRET, issue_reset_token(SECRET, 1, HASH, TTL, generation=1))
    assert first.jti != second.jti


def test_token_dies_with_the_password_it_was_issued_for():
    claims = read_reset_token(SECRET, issue_reset_token(SECRET, 42, HASH, TTL, generation=1))
    assert not token_matches_password(SECRET, claims, HASH + "changed")
    assert not claims.matches_password(HASH + "changed")


def test_expired_token_is_refused_as_expired():
    token = issue_reset_token(SECRET, 1, HASH, TTL, now=utcnow() - timedelta(minutes=11),
                              generation=1)
    with pytest.raises(ExpiredResetToken):
        read_reset_token(SECRET, token)


def test_expiry_defaults_to_ten_minutes_in_the_settings():
    from shared.config import Settings

    assert Settings.from_env({"APP_ENV": "development"}).reset_token_minutes == 10


def test_token_signed_with_another_key_is_refused():
    token = issue_reset_token("another-secret-key-entirely-0123456789", 1, HASH, TTL,
                              generation=1)
    with pytest.raises(InvalidResetToken) as info:
        read_reset_token(SECRET, token)
    assert not isinstance(info.value, ExpiredResetToken)


def test_token_signed_with_an_old_key_is_accepted_through_the_fallbacks():
    """Key rotation: links minted before the rotation keep working, bound to their password."""
    token = issue_reset_token(OLD_SECRET, 5, HASH, TTL, generation=3)
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, token)
    claims = read_reset_token(SECRET, token, fallbacks=[OLD_SECRET])
    assert (claims.user_id, claims.generation) == (5, 3)
    assert claims.matches_password(HASH)  # the fingerprint was keyed with the old key
    assert not claims.matches_password(HASH + "changed")


def test_fallback_keys_only_verify_new_tokens_use_the_current_key():
    token = issue_reset_token(SECRET, 5, HASH, TTL, generation=1)
    claims = read_reset_token(SECRET, token, fallbacks=[OLD_SECRET])
    assert claims.verified_with == SECRET
    with pytest.raises(InvalidResetToken):
        read_reset_token(OLD_SECRET, token)


def test_expired_token_under_an_old_key_is_still_expired():
    token = issue_reset_token(OLD_SECRET, 1, HASH, TTL, now=utcnow() - timedelta(minutes=11),
                              generation=1)
    with pytest.raises(ExpiredResetToken):
        read_reset_token(SECRET, token, fallbacks=[OLD_SECRET])


def test_verification_key_is_not_in_the_repr():
    claims = read_reset_token(SECRET, issue_reset_token(SECRET, 1, HASH, TTL, generation=1))
    assert SECRET not in repr(claims)


def test_token_for_another_purpose_is_refused():
    with pytest.raises(InvalidResetToken, match="purpose"):
        read_reset_token(SECRET, sign(claims_like_ours(purpose="confirm_email")))


def test_token_signed_with_the_raw_secret_key_is_refused():
    """Keys are derived per purpose: a token made with SECRET_KEY itself is not a reset token."""
    token = jwt.encode(claims_like_ours(), SECRET, algorithm="HS256")
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, token)


def test_a_correctly_signed_token_with_another_algorithm_is_refused():
    token = jwt.encode(claims_like_ours(), _signing_key(SECRET) * 2, algorithm="HS512")
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, token)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _json_claims(**changes: object) -> dict[str, object]:
    now = int(utcnow().timestamp())
    claims = {"sub": "1", "purpose": "reset_password", "pwd": "x", "gen": 1, "jti": "a",
              "iat": now, "exp": now + 600}
    claims.update(changes)
    return claims


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(alg: str):
    header = _b64({"alg": alg, "typ": "JWT"})
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, f"{header}.{_b64(_json_claims())}.")


def test_hs256_header_with_an_empty_signature_is_refused():
    header = _b64({"alg": "HS256", "typ": "JWT"})
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, f"{header}.{_b64(_json_claims())}.")


def test_tampered_payload_is_refused():
    token = issue_reset_token(SECRET, 1, HASH, TTL, generation=1)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for change in ({"sub": "2"}, {"gen": 2}, {"exp": claims["exp"] + 3600}, {"pwd": "0" * 32}):
        forged = f"{header}.{_b64({**claims, **change})}.{signature}"
        with pytest.raises(InvalidResetToken):
            read_reset_token(SECRET, forged)


def test_tampered_signature_is_refused():
    token = issue_reset_token(SECRET, 1, HASH, TTL, generation=1)
    head, _, signature = token.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, f"{head}.{flipped}")


def test_a_token_hmac_signed_by_hand_with_our_derived_key_is_what_we_accept():
    """Sanity check of the test helpers above: the derivation is the only secret."""
    header, payload = _b64({"alg": "HS256", "typ": "JWT"}), _b64(_json_claims())
    signing_input = f"{header}.{payload}".encode()
    mac = hmac.new(_signing_key(SECRET), signing_input, hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert read_reset_token(SECRET, f"{header}.{payload}.{signature}").user_id == 1


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "..", "é.é.é", "x" * 5000,
                                     "a" * 3000 + ".b.c"])
def test_garbage_is_refused(garbage: str):
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, garbage)


@pytest.mark.parametrize("missing", ["sub", "purpose", "pwd", "gen", "jti", "iat", "exp"])
def test_missing_claims_are_refused(missing: str):
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, sign(claims_like_ours(**{missing: None})))


@pytest.mark.parametrize("changes", [
    {"sub": "admin"}, {"sub": "0"}, {"sub": "-1"}, {"sub": "²"}, {"sub": 1},
    {"sub": "9" * 30}, {"gen": 0}, {"gen": -1}, {"gen": "1"}, {"gen": True}, {"gen": 2**40},
    {"gen": 1.5}, {"pwd": 5}, {"jti": 5},
])
def test_malformed_claims_are_refused(changes: dict[str, object]):
    with pytest.raises(InvalidResetToken):
        read_reset_token(SECRET, sign(claims_like_ours(**changes)))


def test_the_payload_holds_nothing_sensitive():
    """A JWT is signed, not encrypted: anyone holding the link can read its claims."""
    token = issue_reset_token(SECRET, 42, HASH, TTL, generation=3)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"sub", "purpose", "pwd", "gen", "iat", "exp", "jti"}
    assert HASH not in token and "salt" not in json.dumps(claims)
    assert claims["pwd"] != HASH and len(claims["pwd"]) == 32  # a keyed fingerprint only
