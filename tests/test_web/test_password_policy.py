"""One password policy on both forms: length, the most common passwords, not your own name."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.reset_links import link_path, mint_token

from shared.models import User
from web.auth.password_policy import (
    MAX_LENGTH,
    MIN_LENGTH,
    TOO_COMMON,
    TOO_LONG,
    TOO_PERSONAL,
    TOO_SHORT,
    common_passwords,
    password_problem,
)

GOOD = "correct staple orbit"


@pytest.mark.parametrize(("password", "problem"), [
    ("a" * (MIN_LENGTH - 1), TOO_SHORT),
    ("a" * (MAX_LENGTH + 1), TOO_LONG),
    ("password", TOO_COMMON),
    ("Password1", TOO_COMMON),
    ("  QWERTY123  ", TOO_COMMON),
    ("iloveyou", TOO_COMMON),
    ("12345678", TOO_COMMON),
    ("susan123", None),
    (GOOD, None),
    ("é" * MIN_LENGTH, None),
    ("a" * MAX_LENGTH, None),
])
def test_rules(password: str, problem: str | None):
    assert password_problem(password) == problem


def test_not_the_username_or_the_address():
    assert password_problem("Susanna1", username="susanna1") == TOO_PERSONAL
    assert password_problem("s.smith@example.com", email="S.Smith@example.com") == TOO_PERSONAL
    assert password_problem("s.smith.x", email="s.smith.x@example.com") == TOO_PERSONAL
    assert password_problem(GOOD, username="susan", email="susan@example.com") is None


def test_the_list_is_large_and_lowercase():
    passwords = common_passwords()
    assert len(passwords) > 8000
    assert all(p == p.lower() and MIN_LENGTH <= len(p) <= MAX_LENGTH for p in passwords)


CASES = [
    ("short1", TOO_SHORT),
    ("Password123", TOO_COMMON),
    ("susan-smith", TOO_PERSONAL),
]


@pytest.mark.parametrize(("password", "message"), CASES)
def test_registration_applies_the_policy(client: FlaskClient, password: str, message: str):
    response = client.post("/register", data={
        "username": "susan-smith", "email": "someone@example.com",
        "password": password, "password2": password})
    assert response.status_code == 200
    assert message.encode() in response.data.replace(b"&#39;", b"'")


@pytest.mark.parametrize(("password", "message"), CASES)
def test_reset_applies_the_same_policy(client: FlaskClient, app: Flask, password: str,
                                       message: str):
    from support.factories import make_user

    user: User = make_user(app, username="susan-smith", email="someone@example.com")
    client.get(link_path(mint_token(app, user.id)))
    response = client.post("/reset_password", data={"password": password, "password2": password})
    assert response.status_code == 200
    assert message.encode() in response.data.replace(b"&#39;", b"'")
    ok = client.post("/reset_password", data={"password": GOOD, "password2": GOOD})
    assert ok.headers["Location"] == "/login"  # the link survived the refused attempts
