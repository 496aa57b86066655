"""A real SMTP server (aiosmtpd) on loopback that keeps what it accepts, for assertions.

It can misbehave on purpose: refuse DATA with a reply (`reply`, e.g. "451 try later"),
refuse one recipient at RCPT (`rcpt_replies`), or commit a message and then take its
time to say so (`reply_delay`, or `reply_delays` for one recipient), which is the window
where a client that dies has sent an email without knowing it.

It can speak TLS: `starttls=` a server context (STARTTLS required before anything else)
or `implicit_tls=` one (TLS from the first byte). It accepts any AUTH, also in clear (the
client decides whether to send it), and keeps every line the client sent (`heard`), so a
test can say that no AUTH, MAIL or DATA ever reached it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

LINK = re.compile(r"https?://[^\s\"<>]+/reset_password/[A-Za-z0-9._\-]+")


@dataclass
class ReceivedEmail:
    envelope_to: list[str]
    message: EmailMessage
    received_at: float

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""

    @property
    def reset_link(self) -> str:
        match = LINK.search(self.text)
        assert match, f"no reset link in: {self.text!r}"
        return match.group(0)


@dataclass
class Mailbox:
    """Handler that records messages; `reply` lets a test make the server refuse."""

    received: list[ReceivedEmail] = field(default_factory=list)
    delay_seconds: float = 0.0
    reply: str = "250 OK"
    reply_delay: float = 0.0
    reply_delays: dict[str, float] = field(default_factory=dict)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    refused: list[tuple[float, str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    wire: bytearray = field(default_factory=bytearray)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hear(self, data: bytes) -> None:
        with self._lock:
            self.wire += data

    def heard(self) -> list[str]:
        """The command verbs the client sent, in order (after TLS: decrypted)."""
        with self._lock:
            lines = bytes(self.wire).splitlines()
        return [line.split(b" ", 1)[0].upper().decode(errors="replace") for line in lines if line]

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                     mechanism: str, auth_data: object) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        with self._lock:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=True)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        refusal = self.rcpt_replies.get(address)
        if refusal:
            with self._lock:
                self.refused.append((time.time(), refusal))
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        reply = self.reply
        if not reply.startswith("250"):
            with self._lock:
                self.refused.append((time.time(), reply))
            return reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(ReceivedEmail(list(envelope.rcpt_tos), message, time.time()))
        delay = max([self.reply_delays.get(to, self.reply_delay) for to in envelope.rcpt_tos],
                    default=self.reply_delay)
        if delay:
            # Committed: a client that dies now has sent this email without knowing it.
            await asyncio.sleep(delay)
        return reply

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedEmail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} emails within {timeout}s, got {len(self.received)}")

    def wait_for_recipients(self, addresses: set[str], timeout: float) -> float:
        """Wait until each address has an email; return when the last one arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                arrivals = {to: m.received_at for m in self.received for to in m.envelope_to}
            if addresses <= arrivals.keys():
                return max(arrivals[address] for address in addresses)
            time.sleep(0.05)
        missing = addresses - arrivals.keys()
        raise AssertionError(f"{len(missing)} of {len(addresses)} never arrived "
                             f"within {timeout}s, e.g. {sorted(missing)[:3]}")

    def to(self, address: str) -> list[ReceivedEmail]:
        with self._lock:
            return [m for m in self.received if address in m.envelope_to]

    def recipients(self) -> set[str]:
        with self._lock:
            return {to for m in self.received for to in m.envelope_to}

    def duplicates(self) -> int:
        """Emails beyond the first for each recipient."""
        with self._lock:
            counts = Counter(to for m in self.received for to in m.envelope_to)
        return sum(count - 1 for count in counts.values())


class _ListeningSMTP(SMTP):
    """aiosmtpd's server, telling the mailbox every byte the client sends it."""

    def data_received(self, data: bytes) -> None:
        self.event_handler.hear(data)
        super().data_received(data)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _ListeningSMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """aiosmtpd on a fixed port; `stop()` then `start()` again is an outage and a return."""

    def __init__(self, port: int, starttls: ssl.SSLContext | None = None,
                 implicit_tls: ssl.SSLContext | None = None) -> None:
        self.mailbox = Mailbox()
        self.port = port
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        tls: dict[str, object] = (
            {"tls_context": self.starttls, "require_starttls": True} if self.starttls else {})
        self.controller = _Controller(
            self.mailbox, hostname="127.0.0.1", port=self.port, ssl_context=self.implicit_tls,
            authenticator=self.mailbox.authenticate, auth_require_tls=False, **tls)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
