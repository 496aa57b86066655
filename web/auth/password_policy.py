"""The password rules, the same on the registration and the reset form.

Length (8 to 128 characters: NIST SP 800-63B's floor, and room for passphrases), not one of
the most common passwords (Django's list of 20,000), and not the account's own username or
email address. Nothing else: composition rules make passwords worse, not better.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

from wtforms import Field, Form, ValidationError

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt.gz"

TOO_SHORT = f"Use at least {MIN_LENGTH} characters."
TOO_LONG = f"Use at most {MAX_LENGTH} characters."
TOO_COMMON = "This password is one of the most common ones. Choose one that is harder to guess."
TOO_PERSONAL = "Choose a password that is not your username or email address."


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def password_problem(password: str, username: str | None = None,
                     email: str | None = None) -> str | None:
    """The first rule the password breaks, as a message for the form, or None."""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    folded = password.strip().lower()
    if folded in common_passwords():
        return TOO_COMMON
    personal = {(username or "").strip().lower(), (email or "").strip().lower()}
    personal.add((email or "").partition("@")[0].strip().lower())
    if folded in personal - {""}:
        return TOO_PERSONAL
    return None


class PasswordPolicy:
    """WTForms validator. The form names the account through `username`/`email` fields
    (registration) or an `account` attribute (reset)."""

    def __call__(self, form: Form, field: Field) -> None:
        account = getattr(form, "account", None)
        if account is not None:
            username, email = account.username, account.email
        else:
            username = _data(form, "username")
            email = _data(form, "email")
        problem = password_problem(field.data or "", username, email)
        if problem:
            raise ValidationError(problem)


def _data(form: Form, name: str) -> str | None:
    field = getattr(form, name, None)
    value = getattr(field, "data", None)
    return value if isinstance(value, str) else None
