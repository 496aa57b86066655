"""Property-based (hypothesis): arbitrary tokens, form bodies, query strings and headers, sent
to every route with every method, signed in or not, never get a 5xx.

Tokens range from random text to well-formed JWTs with arbitrary claims signed with the
app's real key, so the claim checks behind the signature are exercised too; none of those
may open the form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.factories import make_user
from support.reset_links import mint_token

from shared.config import Settings
from shared.database import db
from shared.tokens import _signing_key
from web import create_app

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIELDS = ["email", "username", "password", "password2", "remember_me", "csrf_token", "submit",
          "next"]
HEADER_NAMES = ["Host", "Cookie", "Referer", "Origin", "X-Forwarded-For",
                "X-Forwarded-Proto", "Accept", "Accept-Language", "Accept-Encoding",
                "User-Agent", "If-Modified-Since", "If-None-Match", "Range", "Authorization",
                "Content-Type", "X-CSRFToken", "Forwarded"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

# Header values: printable Latin-1, as HTTP allows; names: RFC 9110 token characters.
header_values = st.text(
    st.characters(codec="latin-1", categories=["L", "N", "P", "S", "Zs"]), max_size=200
)
header_names = st.one_of(
    st.sampled_from(HEADER_NAMES),
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~",
            min_size=1, max_size=30),
)
headers = st.dictionaries(header_names, header_values, max_size=6)
any_text = st.text(max_size=300)
form_bodies = st.dictionaries(st.one_of(st.sampled_from(FIELDS), any_text),
                              st.one_of(any_text, st.sampled_from(
                                  ["susan@example.com", "correct horse battery", "y"])),
                              max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
CLAIM_NAMES = ["sub", "purpose", "pwd", "gen", "jti", "iat", "exp", "nbf", "aud", "iss"]


@pytest.fixture
def site(settings: Settings, fake_broker) -> Iterator[Flask]:
    app = create_app(settings.with_overrides(ratelimit_enabled=False))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        db.create_all()
    make_user(app)
    yield app
    with app.app_context():
        db.engine.dispose()


def segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_claims(app: Flask) -> st.SearchStrategy[str]:
    """JWTs with our header and key around arbitrary claims: the signature passes.

    Signed by hand, since PyJWT's encoder refuses some claim types its decoder must survive.
    """
    key = _signing_key(app.config["SECRET_KEY"])

    @st.composite
    def build(draw: st.DrawFn) -> str:
        claims = draw(st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values, max_size=9))
        if draw(st.booleans()):
            claims.update({"purpose": "reset_password", "sub": "1", "gen": draw(st.integers())})
        if draw(st.booleans()):
            claims.update({"exp": 4102444800, "iat": 1700000000})
        head = segment(b'{"alg":"HS256","typ":"JWT"}') + "." + segment(json.dumps(claims).encode())
        mac = hmac.new(key, head.encode(), hashlib.sha256).digest()
        return head + "." + segment(mac)

    return build()


def raw_jwts() -> st.SearchStrategy[str]:
    """Three base64url segments of anything, `alg: none` and friends included."""
    header = st.one_of(
        st.dictionaries(st.sampled_from(["alg", "typ", "kid", "crit", "jku"]), json_values,
                        max_size=4).map(lambda h: json.dumps(h).encode()),
        st.binary(max_size=40),
    )
    return st.tuples(header, st.binary(max_size=80), st.binary(max_size=40)).map(
        lambda parts: ".".join(segment(p) for p in parts))


def tokens(app: Flask) -> st.SearchStrategy[str]:
    return st.one_of(any_text.filter(bool), signed_claims(app), raw_jwts())


def paths(app: Flask) -> st.SearchStrategy[str]:
    rules = sorted((rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"),
                   key=lambda rule: rule.rule)

    @st.composite
    def build(draw: st.DrawFn) -> str:
        rule = draw(st.sampled_from(rules))
        path = rule.rule
        for argument in rule.arguments:
            value = draw(tokens(app)) if argument == "token" else draw(any_text.filter(bool))
            path = path.replace(f"<{argument}>", quote(value, safe=""))
        if draw(st.booleans()):
            path += "?" + urlencode(draw(st.dictionaries(any_text, any_text, max_size=3)))
        return path

    return build()


def signed_in(app: Flask, client: FlaskClient) -> None:
    """A valid session for the account, without paying for a password check."""
    serializer = app.session_interface.get_signing_serializer(app)
    cookie = serializer.dumps({"_user_id": "1:0", "_fresh": True})
    client.set_cookie("session", cookie)


def assert_no_5xx(response, what: str) -> None:
    if what.split()[-1].startswith("/healthz") and response.status_code == 503:
        return  # its designed answer: the unit tests' broker is not reachable by redis-py
    assert response.status_code < 500, f"{response.status_code} for {what}"


@pytest.fixture
def deployed_site(settings: Settings, fake_broker) -> Iterator[Flask]:
    """CSRF on and the rate limits on, as deployed."""
    app = create_app(settings)
    with app.app_context():
        db.create_all()
    make_user(app)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_any_request_to_any_route_gets_no_5xx(site: Flask):
    check_every_route(site)


def test_any_request_to_the_deployed_app_gets_no_5xx(deployed_site: Flask):
    check_every_route(deployed_site)


def check_every_route(site: Flask) -> None:
    @PROPERTY_SETTINGS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        client = site.test_client()
        if data.draw(st.booleans(), label="signed in"):
            signed_in(site, client)
        path = data.draw(paths(site), label="path")
        method = data.draw(st.sampled_from(METHODS), label="method")
        sent_headers = data.draw(headers, label="headers")
        body = data.draw(st.one_of(form_bodies, st.binary(max_size=300)), label="body")
        kwargs: dict = {"headers": sent_headers}
        if method not in ("GET", "HEAD", "OPTIONS"):
            if isinstance(body, bytes):
                kwargs["data"] = body
                kwargs["content_type"] = sent_headers.get(
                    "Content-Type", "application/x-www-form-urlencoded")
            else:
                kwargs["data"] = body
        with client.open(path, method=method, **kwargs) as response:
            assert_no_5xx(response, f"{method} {path}")

    check()


def test_no_token_but_a_live_one_opens_the_form(site: Flask):
    @PROPERTY_SETTINGS
    @given(token=tokens(site), method=st.sampled_from(["GET", "POST"]), body=form_bodies)
    def check(token: str, method: str, body: dict) -> None:
        client = site.test_client()
        response = client.open(f"/reset_password/{quote(token, safe='')}", method=method,
                               data=body if method == "POST" else None)
        # 404 or 308 (Werkzeug merging slashes) when the token holds a '/': never the form.
        assert response.status_code in (308, 400, 404), response.status_code
        assert client.get("/reset_password").status_code == 400

    check()


def test_a_live_link_survives_arbitrary_form_bodies(site: Flask):
    """Whatever is posted with a live link: a form with errors, or a reset; never a 5xx."""
    @PROPERTY_SETTINGS
    @given(body=form_bodies, query=st.dictionaries(any_text, any_text, max_size=2))
    def check(body: dict, query: dict) -> None:
        client = site.test_client()
        token = mint_token(site, 1)
        assert client.get(f"/reset_password/{token}").status_code == 302
        suffix = ("?" + urlencode(query)) if query else ""
        response = client.post("/reset_password" + suffix, data=body)
        assert response.status_code in (200, 302)

    check()


def test_reset_requests_are_answered_alike_whatever_the_body(site: Flask):
    @PROPERTY_SETTINGS
    @given(body=form_bodies, sent_headers=headers)
    def check(body: dict, sent_headers: dict) -> None:
        sent_headers.pop("Host", None)
        response = site.test_client().post("/reset_password_request", data=body,
                                           headers=sent_headers)
        assert_no_5xx(response, repr(body))
        if response.status_code == 302:
            assert response.headers["Location"] == "/reset_password_request/sent"

    check()
