"""Security headers on every page, no-store on reset pages, cookie flags, trusted hosts, and a
Referrer-Policy that keeps Flask-WTF's HTTPS referrer check working."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.reset_links import link_path, mint_token

from shared.config import Settings
from shared.database import db
from shared.models import User
from web import create_app

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
BASE = "https://microblog.example.test"
CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
PAGES = ["/", "/index", "/login", "/register", "/reset_password_request",
         "/reset_password_request/sent", "/reset_password", "/reset_password/garbage",
         "/no/such/page", "/static/style.css", "/healthz", "/user/susan"]
RESET_PAGES = ["/reset_password_request", "/reset_password_request/sent", "/reset_password",
               "/reset_password/garbage"]


def csp_directives(header: str) -> dict[str, str]:
    return {part.split()[0]: part for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.parametrize("path", PAGES)
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str):
    with client.get(path) as response:
        headers = response.headers
    csp = csp_directives(headers["Content-Security-Policy"])
    assert csp["default-src"] == "default-src 'self'"
    assert csp["script-src"] == "script-src 'self'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["object-src"] == "object-src 'none'"
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


def test_the_500_page_carries_them_too(app: Flask, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("web.auth.routes.request_password_reset", boom)
    response = app.test_client().post("/reset_password_request", data={"email": "a@example.com"})
    assert response.status_code == 500
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize("path", RESET_PAGES)
def test_reset_pages_are_never_stored(client: FlaskClient, path: str):
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_the_link_redirect_and_the_form_are_never_stored(client: FlaskClient, app: Flask,
                                                         user: User):
    redirect = client.get(link_path(mint_token(app, user.id)))
    assert redirect.status_code == 302 and redirect.headers["Cache-Control"] == "no-store"
    form = client.get("/reset_password")
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_script_or_style():
    """The CSP forbids them; a template that used one would silently break in browsers."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert not re.search(r"\sstyle\s*=", text), template
        assert not re.search(r"<style", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


def test_hsts_in_production_over_https(settings: Settings, fake_broker):
    production = settings.with_overrides(env="production")
    response = create_app(production).test_client().get("/login", base_url=BASE)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_no_hsts_in_development(client: FlaskClient):
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_referrer_policy_keeps_the_https_csrf_check_working(csrf_app: Flask):
    """Under `same-origin` a browser sends our own page as the Referer of our own form posts,
    which Flask-WTF requires over HTTPS; a cross-site or missing Referer is still refused."""
    client = csrf_app.test_client()
    page = client.get(f"{BASE}/reset_password_request")
    assert page.headers["Referrer-Policy"] == "same-origin"
    token = CSRF.search(page.data).group(1).decode()
    data = {"email": "someone@example.com", "csrf_token": token}
    url = f"{BASE}/reset_password_request"

    missing = client.post(url, data=data)
    assert missing.status_code == 400 and b"Your form expired" in missing.data
    cross_site = client.post(url, data=data, headers={"Referer": "https://evil.example/"})
    assert cross_site.status_code == 400
    same_origin = client.post(url, data=data, headers={"Referer": url})
    assert same_origin.status_code == 302


def production_settings(settings: Settings, **overrides: object) -> Settings:
    return settings.with_overrides(env="production", **overrides)


def test_production_cookies_are_secure_httponly_and_samesite(settings: Settings, fake_broker):
    config = production_settings(settings).flask_config()
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["SESSION_COOKIE_HTTPONLY"] and config["REMEMBER_COOKIE_HTTPONLY"]
    assert config["SESSION_COOKIE_SAMESITE"] == config["REMEMBER_COOKIE_SAMESITE"] == "Lax"

    app = create_app(production_settings(settings))
    with app.app_context():
        db.create_all()
    cookie = app.test_client().get(f"{BASE}/login").headers["Set-Cookie"]
    attributes = {part.strip() for part in cookie.split(";")}
    assert {"Secure", "HttpOnly", "SameSite=Lax"} <= attributes


def test_cookie_security_is_fixed_in_production_and_can_be_set_in_development():
    assert Settings(env="production", preferred_url_scheme="http").secure_cookies
    assert not Settings(env="development").secure_cookies
    assert Settings.from_env({"APP_ENV": "development",
                              "SESSION_COOKIE_SECURE": "true"}).secure_cookies


def test_unknown_hosts_are_refused_in_production(settings: Settings, fake_broker):
    app = create_app(production_settings(settings))
    with app.app_context():
        db.create_all()
    client = app.test_client()
    refused = client.get("/login", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert b"evil.example" not in refused.data
    assert client.get("/login", headers={"Host": "microblog.example.test"}).status_code == 200
    assert client.get("/login", headers={"Host": "127.0.0.1:8000"}).status_code == 200


@pytest.mark.parametrize("host", [".", "a..b", "x" * 64 + ".example"])
def test_a_host_that_is_no_host_name_gets_a_plain_400(client: FlaskClient, host: str):
    """Found by the property tests: the styled error page cannot build its links for it."""
    response = client.get("/", headers={"Host": host})
    assert response.status_code == 400
    assert b"does not answer to that host name" in response.data


def test_trusted_hosts_come_from_the_environment():
    settings = Settings.from_env({"APP_ENV": "production", "SERVER_NAME": "blog.example.org",
                                  "TRUSTED_HOSTS": "blog.example.org, .example.net"})
    assert settings.flask_config()["TRUSTED_HOSTS"] == ["blog.example.org", ".example.net"]
    default = Settings.from_env({"APP_ENV": "production", "SERVER_NAME": "blog.example.org:443"})
    assert default.allowed_hosts == ["blog.example.org", "localhost", "127.0.0.1"]
    anything = Settings.from_env({"APP_ENV": "production", "TRUSTED_HOSTS": "*",
                                  "SERVER_NAME": "blog.example.org"})
    assert anything.allowed_hosts is None


def test_proxies_in_front_give_the_client_address(settings: Settings, fake_broker):
    app = create_app(settings.with_overrides(trusted_proxies=1,
                                             ratelimit_reset_token_per_ip="1 per hour"))
    client = app.test_client()
    first = client.get("/reset_password/x", headers={"X-Forwarded-For": "203.0.113.7"})
    assert first.status_code == 400
    same = client.get("/reset_password/x", headers={"X-Forwarded-For": "203.0.113.7"})
    assert same.status_code == 429
    other = client.get("/reset_password/x", headers={"X-Forwarded-For": "203.0.113.8"})
    assert other.status_code == 400
