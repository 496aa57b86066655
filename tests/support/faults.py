"""What the fault-injection tests share: short timeouts, many users, many requests, figures.

The timeouts are the production ones scaled down (same relations, checked by
`Settings.check_delivery_timing`), so a whole fault suite takes a minute or two.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert
from werkzeug.security import generate_password_hash

from shared.database import db
from shared.models import DeliveryAttempt, EmailDelivery, User

# Production: 10 / 15 / 20 / 30 / 5 / 30 / 2 / 120 (see .env.example).
SHORT_TIMEOUTS = {
    "SMTP_TIMEOUT": "1",
    "TASK_SOFT_TIME_LIMIT": "3",
    "TASK_TIME_LIMIT": "4",  # a claim's lease: 4 + 2 = 6 s
    "BROKER_VISIBILITY_TIMEOUT": "8",  # broker sweep every 1 s
    "OUTBOX_RELAY_INTERVAL": "0.5",
    "OUTBOX_STALE_AFTER": "5",
    "RETRY_BACKOFF_BASE": "0.5",
    "RETRY_BACKOFF_MAX": "4",
    "PUBLISH_TIMEOUT": "0.5",
}
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@dataclass
class FaultFigures:
    fault: str
    accepted: int
    delivered: int
    duplicates: int
    recovery_seconds: float
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.fault}: accepted={self.accepted} delivered={self.delivered} "
                f"duplicates={self.duplicates} recovery={self.recovery_seconds:.1f}s "
                + "; ".join(self.notes))


def make_users(app: Flask, count: int, prefix: str = "user") -> list[str]:
    """`count` accounts in one statement (one shared hash: hashing 100 times is slow)."""
    password_hash = generate_password_hash("correct horse battery")
    emails = [f"{prefix}{n:03d}@example.com" for n in range(count)]
    with app.app_context():
        db.session.execute(insert(User), [
            {"username": address.split("@")[0], "email": address, "password_hash": password_hash}
            for address in emails
        ])
        db.session.commit()
    return emails


class ResetRequests:
    """Users asking for a reset through the web app's test client, timed one by one."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        page = client.get("/reset_password_request")
        match = CSRF.search(page.get_data(as_text=True))
        assert match, "no CSRF token on the reset request form"
        self.token = match.group(1)
        self.referer = page.request.url
        self.seconds: list[float] = []

    def ask(self, email: str) -> int:
        started = time.perf_counter()
        response = self.client.post(
            "/reset_password_request", data={"email": email, "csrf_token": self.token},
            headers={"Referer": self.referer},
        )
        self.seconds.append(time.perf_counter() - started)
        accepted = (response.status_code == 302
                    and response.headers["Location"] == "/reset_password_request/sent")
        assert accepted, f"{email}: {response.status_code} {response.get_data(as_text=True)[:200]}"
        return response.status_code

    def ask_all(self, emails: list[str]) -> int:
        for address in emails:
            self.ask(address)
        return len(emails)

    def timing_note(self) -> str:
        ordered = sorted(self.seconds)
        median = ordered[len(ordered) // 2]
        return f"answer median {median * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


class _LoopbackIsSecure(DefaultCookiePolicy):
    """Browsers count http://127.0.0.1 and localhost as secure and send `Secure` cookies
    there; so does this client. Production cookies are always Secure."""

    def return_ok_secure(self, cookie, request):  # type: ignore[no-untyped-def]
        host = urlsplit(request.get_full_url()).hostname
        return host in {"127.0.0.1", "localhost", "::1"} or super().return_ok_secure(
            cookie, request)


class HttpResetRequests:
    """The same, over real HTTP to a web process (gunicorn), as a browser would."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        cookies = CookieJar(_LoopbackIsSecure())
        self.opener = build_opener(HTTPCookieProcessor(cookies), _NoRedirect())
        with self.opener.open(f"{base_url}/reset_password_request", timeout=10) as page:
            match = CSRF.search(page.read().decode())
        assert match, "no CSRF token on the reset request form"
        self.token = match.group(1)

    def ask(self, email: str) -> None:
        body = urlencode({"email": email, "csrf_token": self.token}).encode()
        request = Request(f"{self.base_url}/reset_password_request", data=body,
                          headers={"Referer": f"{self.base_url}/reset_password_request"})
        try:
            self.opener.open(request, timeout=10)
        except Exception as exc:  # urllib raises HTTPError for the 302 it may not follow
            status = getattr(exc, "code", None)
            location = getattr(exc, "headers", {}).get("Location", "")
            assert status == 302 and location.endswith("/reset_password_request/sent"), exc
            return
        raise AssertionError(f"{email}: expected a redirect to the confirmation page")


def rows(app: Flask) -> list[EmailDelivery]:
    with app.app_context():
        found = db.session.scalars(db.select(EmailDelivery)).all()
        db.session.expunge_all()
        return list(found)


def attempts(app: Flask) -> list[DeliveryAttempt]:
    with app.app_context():
        found = db.session.scalars(
            db.select(DeliveryAttempt).order_by(DeliveryAttempt.delivery_id,
                                                DeliveryAttempt.started_at)
        ).all()
        db.session.expunge_all()
        return list(found)


def statuses(app: Flask) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows(app):
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until `condition()`; return the time it became true (time.time())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")
