"""A real SMTP server (aiosmtpd) on loopback that keeps what it accepts, for assertions."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

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
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay_seconds:
            import asyncio

            await asyncio.sleep(self.delay_seconds)
        if not self.reply.startswith("250"):
            return self.reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(ReceivedEmail(list(envelope.rcpt_tos), message, time.time()))
        return self.reply

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedEmail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} emails within {timeout}s, got {len(self.received)}")

    def to(self, address: str) -> list[ReceivedEmail]:
        with self._lock:
            return [m for m in self.received if address in m.envelope_to]


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.mailbox = Mailbox()
        self.port = port
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
