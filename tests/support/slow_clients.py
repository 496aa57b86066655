"""Clients that open TCP connections and then send nothing, or a header line now and then.

Against a server with sync workers, a handful of them holds every worker until its timeout
(30 s): the site stops answering. `IdleClients` keeps its connections open for as long as it
runs, opening a new one whenever the server closes one, as a patient attacker would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class IdleClients:
    address: tuple[str, int]
    count: int = 20
    dribble: bool = False  # send a request line, then one header line a second, never the end
    source: str = "127.0.0.1"
    reopened: int = 0
    _sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _open(self) -> socket.socket:
        client = socket.create_connection(self.address, timeout=5,
                                          source_address=(self.source, 0))
        if self.dribble:
            client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        client.setblocking(False)
        return client

    @staticmethod
    def _closed(client: socket.socket) -> bool:
        try:
            return client.recv(4096) == b""  # an error page is data; only EOF means closed
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _keep_open(self) -> None:
        last_dribble = time.monotonic()
        while not self._stop.wait(0.2):
            for index, client in enumerate(self._sockets):
                if self._closed(client):
                    client.close()
                    self._sockets[index] = self._open()
                    self.reopened += 1
            if self.dribble and time.monotonic() - last_dribble >= 1:
                last_dribble = time.monotonic()
                for client in self._sockets:
                    try:
                        client.sendall(b"X-Dribble: 1\r\n")
                    except OSError:
                        pass  # reopened on the next round

    @contextmanager
    def held(self) -> Iterator[IdleClients]:
        self._sockets = [self._open() for _ in range(self.count)]
        keeper = threading.Thread(target=self._keep_open, daemon=True)
        keeper.start()
        try:
            time.sleep(0.5)  # let the server accept them all before anyone else comes
            yield self
        finally:
            self._stop.set()
            keeper.join(timeout=5)
            for client in self._sockets:
                client.close()


def timed(call) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result
