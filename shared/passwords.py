"""Password hashing: argon2id at the cost PASSWORD_HASH_METHOD names, configured once per app.

argon2id is OWASP's first choice (m=19 MiB, t=2, p=1): memory-hard like scrypt at a sixth of
the memory that scrypt needs for the same advice (N=2^17 is 128 MiB per hash), and
argon2-cffi says when a stored hash was made at another cost (`check_needs_rehash`).
Hashes made before it (werkzeug's `scrypt:` and `pbkdf2:`) still verify; the sign-in
replaces them once the password is known to be right.

Every check costs one hash at the current cost, also for a user name that has no account:
`check_against_nobody` spends it on a stand-in hash, so the answer takes as long.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app
from werkzeug.security import check_password_hash

from shared.config import ConfigError, Settings

ARGON2_PREFIX = "$argon2"
EXTENSION = "passwords"


class PasswordHashing:
    """argon2id with `memory_kib` KiB of memory, `time_cost` passes and `parallelism` lanes."""

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self.memory_kib, self.time_cost, self.parallelism = memory_kib, time_cost, parallelism
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                      parallelism=parallelism, type=Type.ID)
        # Made now, not at the first unknown name, which would otherwise take twice as long.
        self._stand_in_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def parse(cls, method: str) -> PasswordHashing:
        """`argon2id:m=19456,t=2,p=1` (the parameters of argon2's own hash strings)."""
        wrong = ConfigError(
            f"PASSWORD_HASH_METHOD must look like argon2id:m=19456,t=2,p=1, not {method!r}")
        name, _, params = method.strip().partition(":")
        try:
            values = {key.strip(): int(value) for key, value in (
                pair.split("=", 1) for pair in params.split(","))}
        except ValueError as exc:
            raise wrong from exc
        if name != "argon2id" or sorted(values) != ["m", "p", "t"]:
            raise wrong
        memory, passes, lanes = values["m"], values["t"], values["p"]
        if passes < 1 or lanes < 1 or memory < 8 * lanes:
            raise ConfigError("PASSWORD_HASH_METHOD: argon2id needs t>=1, p>=1 and m>=8*p (KiB)")
        return cls(memory_kib=memory, time_cost=passes, parallelism=lanes)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        """True when `password` matches `stored`, whichever scheme made it."""
        if not stored.startswith(ARGON2_PREFIX):
            return check_password_hash(stored, password)  # werkzeug's scrypt: or pbkdf2:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Made by an older scheme or at another cost: hash again once the password is known."""
        if not stored.startswith(ARGON2_PREFIX):
            return True
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def check_against_nobody(self, password: str) -> bool:
        """Spend one check at the current cost, for a user name that has no account."""
        self.verify(self._stand_in_hash, password)
        return False


def init_password_hashing(app: Flask, settings: Settings) -> None:
    app.extensions[EXTENSION] = PasswordHashing.parse(settings.password_hash_method)


def password_hashing() -> PasswordHashing:
    """The hashing of the app handling this request (set up by `init_password_hashing`)."""
    hashing = current_app.extensions.get(EXTENSION)
    if hashing is None:
        raise RuntimeError("init_password_hashing(app, settings) was not called for this app")
    return hashing  # type: ignore[no-any-return]
