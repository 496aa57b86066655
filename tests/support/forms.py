"""Drive the site's forms as a browser would: fetch the page, keep its CSRF token, post."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')


def submit(client: FlaskClient, path: str, data: dict[str, str]) -> TestResponse:
    page = client.get(path)
    match = CSRF.search(page.data)
    assert match, f"no CSRF token on {path} ({page.status_code})"
    # A browser sends the page it came from; Flask-WTF requires it on HTTPS.
    return client.post(path, data={**data, "csrf_token": match.group(1).decode()},
                       headers={"Referer": page.request.url})
