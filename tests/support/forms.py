"""Drive the site's forms as a browser would: fetch the page, keep its CSRF token, post."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')


def submit(client: FlaskClient, path: str, data: dict[str, str]) -> TestResponse:
    """Open `path` (following redirects, as a reset link redirects to its form) and post the
    form found there to the page it is on."""
    page = client.get(path, follow_redirects=True)
    match = CSRF.search(page.data)
    assert match, f"no CSRF token on {path} ({page.status_code})"
    # A browser sends the page it came from; Flask-WTF requires it on HTTPS.
    target = page.request.full_path.rstrip("?")
    return client.post(target, data={**data, "csrf_token": match.group(1).decode()},
                       headers={"Referer": page.request.url})
