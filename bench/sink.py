"""An SMTP sink in its own process that records when each email was accepted, and for whom.

aiosmtpd runs in the child process (so its CPU is not the benchmark client's), answers
`250` at once or after a delay set at run time, and keeps `(recipient, time.time())` per
accepted message. The parent asks over a pipe: how many, which since an index, and
"wait until this recipient's email is in" (answered the moment it arrives, no polling).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

Arrival = tuple[str, float]


class RecordingHandler:
    def __init__(self) -> None:
        self.delay_seconds = 0.0
        self.arrivals: list[Arrival] = []
        self.first_by_recipient: dict[str, float] = {}
        self.changed = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        accepted_at = time.time()
        recipient = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        with self.changed:
            self.arrivals.append((recipient, accepted_at))
            self.first_by_recipient.setdefault(recipient, accepted_at)
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, recipient: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: recipient in self.first_by_recipient, timeout)
            return self.first_by_recipient.get(recipient)


def _serve(conn: Connection, host: str, port: int) -> None:
    handler = RecordingHandler()
    controller = Controller(handler, hostname=host, port=port, ready_timeout=10)
    controller.start()
    conn.send(("ready",))
    try:
        while True:
            command, *args = conn.recv()
            if command == "stop":
                break
            conn.send(_answer(handler, command, args))
    finally:
        controller.stop()


def _answer(handler: RecordingHandler, command: str, args: list[Any]) -> Any:
    if command == "delay":
        handler.delay_seconds = float(args[0])
        return True
    if command == "count":
        return len(handler.arrivals)
    if command == "since":
        with handler.changed:
            return handler.arrivals[int(args[0]):]
    if command == "wait_for":
        return handler.wait_for(str(args[0]), float(args[1]))
    raise ValueError(f"unknown sink command {command!r}")


class SmtpSink:
    """The parent's handle on the sink process."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._context = multiprocessing.get_context("spawn")
        self._conn, child = self._context.Pipe()
        self.process = self._context.Process(target=_serve, args=(child, host, port), daemon=True)
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def start(self, timeout: float = 20) -> SmtpSink:
        self.process.start()
        if not self._conn.poll(timeout):
            self.process.kill()
            raise RuntimeError("SMTP sink did not start")
        self._conn.recv()
        return self

    def _ask(self, *command: Any) -> Any:
        with self._lock:
            self._conn.send(command)
            return self._conn.recv()

    def set_delay(self, seconds: float) -> None:
        self._ask("delay", seconds)

    def count(self) -> int:
        return int(self._ask("count"))

    def arrivals_since(self, index: int) -> list[Arrival]:
        return list(self._ask("since", index))

    def wait_for(self, recipient: str, timeout: float = 10.0) -> float | None:
        return self._ask("wait_for", recipient, timeout)

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                with self._lock:
                    self._conn.send(("stop",))
            except OSError:
                pass
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
