"""Serve a Flask app over real HTTP on loopback, for the browser."""

from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import make_server


class LiveServer:
    def __init__(self, app: Flask, port: int) -> None:
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.port = port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()
