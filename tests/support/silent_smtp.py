"""A server that accepts TCP connections on an SMTP port and never says a word.

The worst SMTP server there is: the connection succeeds, so only a socket timeout on the
client ends the wait for a greeting that never comes.
"""

from __future__ import annotations

import socket
import threading


class SilentServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.connections: list[socket.socket] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> SilentServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.1)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)  # held open, never written to

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for connection in self.connections:
            connection.close()
