"""A small HTTP client for a server on loopback: keeps cookies, never follows redirects.

Cookies go back whatever their flags say (a `Secure` session cookie included): the smoke
tests talk plain HTTP to what a TLS proxy would front. `source` picks the loopback address
the client connects from (127.0.0.2 is another visitor); `tls` is the context for https.
"""

from __future__ import annotations

import base64
import functools
import http.client
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@dataclass
class HttpResponse:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class _FromAddress(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    def __init__(self, source: str, tls: ssl.SSLContext | None) -> None:
        urllib.request.HTTPHandler.__init__(self)
        urllib.request.HTTPSHandler.__init__(self, context=tls)
        self.source = (source, 0)
        self.tls = tls

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(http.client.HTTPConnection, source_address=self.source)
        return self.do_open(connection, req)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(http.client.HTTPSConnection, source_address=self.source)
        return self.do_open(connection, req, context=self.tls)


class HttpClient:
    def __init__(self, base_url: str, host: str | None = None,
                 basic_auth: tuple[str, str] | None = None, source: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = host
        self.basic_auth = basic_auth
        self.cookies: dict[str, str] = {}
        self._opener = urllib.request.build_opener(_NoRedirects, _FromAddress(source, tls))

    def request(self, method: str, path: str, data: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, timeout: float = 10) -> HttpResponse:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        if self.host:
            request.add_header("Host", self.host)
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if self.basic_auth:
            token = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                result = HttpResponse(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            result = HttpResponse(error.code, error.headers, error.read())
        for cookie in result.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return result

    def get(self, path: str, **kwargs: object) -> HttpResponse:
        return self.request("GET", path, **kwargs)  # type: ignore[arg-type]

    def submit(self, path: str, data: dict[str, str]) -> HttpResponse:
        """Fetch the form, keep its CSRF token, post it back as a browser would."""
        page = self.get(path)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status})"
        referer = f"https://{self.host}{path}" if self.host else self.base_url + path
        return self.request("POST", path, data={**data, "csrf_token": match.group(1)},
                            headers={"Referer": referer})
