"""An HTTP client that asks for resets as a browser does: one form GET per session, then POSTs.

The GET gives the session cookie and its CSRF token (Flask-WTF); the token is valid for the
whole session, so the POSTs reuse them. Each POST's own `Set-Cookie` (a flash message) is
not kept, so the cookie stays the same size however many POSTs a session makes.
"""

from __future__ import annotations

import http.client
import re
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode

FORM_PATH = "/reset_password_request"
CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
# A reset request is answered with a redirect to the confirmation page.
EXPECTED_STATUS = 302


class BrowserSession:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)
        self.cookie = ""
        self.token = ""

    def open(self) -> BrowserSession:
        status, headers, body = self._request("GET", FORM_PATH, None, {})
        match = CSRF.search(body)
        if status != 200 or not match:
            raise RuntimeError(f"no reset form with a CSRF token at {FORM_PATH} ({status})")
        jar = SimpleCookie()
        for header in headers.get_all("Set-Cookie") or []:
            jar.load(header)
        self.cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())
        self.token = match.group(1).decode()
        return self

    def post_reset(self, email: str) -> tuple[int, float]:
        """POST the form; return the status and the seconds until the whole answer was read."""
        body = urlencode({"csrf_token": self.token, "email": email, "submit": "Reset Password"})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": self.cookie}
        started = time.perf_counter()
        status, _, _ = self._request("POST", FORM_PATH, body, headers)
        return status, time.perf_counter() - started

    def _request(self, method: str, path: str, body: str | None,
                 headers: dict[str, str]) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                return response.status, response.headers, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server had already closed: retry once, fresh.
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()
