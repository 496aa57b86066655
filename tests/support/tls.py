"""Certificates for an SMTP relay in tests, made by trustme: a private CA and its leaves.

`PrivateCA(directory).server_context("127.0.0.1")` is what the relay presents;
`ca_file` is what MAIL_CA_FILE (or SSL_CERT_FILE) points at to trust it.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

RELAY_NAMES = ("127.0.0.1", "localhost")


def _server_context() -> ssl.SSLContext:
    return ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)


class PrivateCA:
    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / f"ca-{id(self):x}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._directory = directory

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A relay's context with a certificate this CA issued for `names`."""
        context = _server_context()
        self.ca.issue_cert(*(names or RELAY_NAMES)).configure_cert(context)
        return context

    def self_signed_context(self) -> ssl.SSLContext:
        """A relay presenting the CA's own certificate: self-signed, issued by nobody."""
        pem = self._directory / f"self-signed-{id(self):x}.pem"
        pem.write_bytes(self.ca.private_key_pem.bytes() + self.ca.cert_pem.bytes())
        context = _server_context()
        context.load_cert_chain(str(pem))
        return context
