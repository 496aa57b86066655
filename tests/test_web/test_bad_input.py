"""Bad input gets a clear, styled answer: never a 500, never a stack trace."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient


def test_missing_csrf_token_gets_a_clear_400(csrf_app: Flask):
    client = csrf_app.test_client()
    response = client.post("/reset_password_request", data={"email": "a@example.com"})
    assert response.status_code == 400
    assert b"Your form expired" in response.data
    assert b"<!doctype html>" in response.data


def test_csrf_token_is_a_hidden_field(csrf_app: Flask):
    page = csrf_app.test_client().get("/reset_password_request").data
    assert b'name="csrf_token" type="hidden"' in page


def test_unknown_route_gets_a_styled_404(client: FlaskClient):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert b"There is no page at this address." in response.data


def test_wrong_method_is_405(client: FlaskClient):
    assert client.delete("/login").status_code == 405


def test_huge_body_is_413(client: FlaskClient):
    response = client.post("/reset_password_request", data={"email": "a" * 200_000})
    assert response.status_code == 413
    assert b"too large" in response.data


@pytest.mark.parametrize("body", [b"email=\xff\xfe\xfd", b"\x00\x01\x02", b"%%%%=&&&"])
def test_non_utf8_and_malformed_bodies_are_not_500(client: FlaskClient, body: bytes):
    response = client.post("/reset_password_request", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500


def test_unexpected_error_gets_the_styled_500(app: Flask, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom(*args, **kwargs):
        raise RuntimeError("secret detail that must not leak")

    monkeypatch.setattr("web.auth.routes.request_password_reset", boom)
    response = app.test_client().post("/reset_password_request", data={"email": "a@example.com"})
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.data
    assert b"secret detail" not in response.data
