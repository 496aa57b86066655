"""Debian's nginx, in the foreground on loopback, with the reverse proxy config the repo ships.

The server blocks, map and log format are deploy/nginx/microblog.conf itself; only what
names the container's world is rewritten (the listen ports, `web:8000`, the certificate and
log paths), and the file is wrapped in the main context the nginx image would give it.
A rewrite that no longer applies is an error, so the file cannot drift from this harness.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from scripts.embedded_redis import free_port
from support.processes import ROOT

NGINX = Path("/usr/sbin/nginx")
OPENSSL = shutil.which("openssl")
SHIPPED_CONFIG = ROOT / "deploy" / "nginx" / "microblog.conf"


def missing_programs() -> str | None:
    """Why the proxy tests cannot run here, or None."""
    if not NGINX.exists():
        return f"{NGINX} is missing (Debian package nginx, see scripts/debian-packages.txt)"
    if OPENSSL is None:
        return "openssl is missing (Debian package openssl)"
    return None


def self_signed_certificate(directory: Path) -> Path:
    """fullchain.pem and privkey.pem for 127.0.0.1, as deploy/README.md makes them."""
    directory.mkdir(parents=True, exist_ok=True)
    assert OPENSSL is not None
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(directory / "privkey.pem"), "-out", str(directory / "fullchain.pem")],
        check=True, capture_output=True)
    return directory / "fullchain.pem"


def rewrite(text: str, old: str, new: str) -> str:
    if old not in text:
        raise AssertionError(f"{SHIPPED_CONFIG.name} no longer has {old!r}: update the harness")
    return text.replace(old, new)


def local_config(upstream_port: int, http_port: int, https_port: int, certs: Path,
                 workdir: Path) -> str:
    """The shipped config for this machine, wrapped in a main context of its own."""
    server = SHIPPED_CONFIG.read_text()
    server = rewrite(server, "listen 80 ", f"listen 127.0.0.1:{http_port} ")
    server = rewrite(server, "listen 443 ", f"listen 127.0.0.1:{https_port} ")
    server = rewrite(server, "server web:8000;", f"server 127.0.0.1:{upstream_port};")
    server = rewrite(server, "/etc/nginx/certs/", f"{certs}/")
    server = rewrite(server, "/var/log/nginx/", f"{workdir}/")
    temp_paths = "\n".join(f"    {kind}_temp_path {workdir}/{kind};"
                           for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # nginx started by root runs its workers as `nobody`, who cannot read a pytest tmp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}daemon off;\nworker_processes 1;\npid {workdir}/nginx.pid;\n"
            f"error_log {workdir}/error.log notice;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n{temp_paths}\n    access_log {workdir}/access.log;\n{server}\n}}\n")


class NginxServer:
    def __init__(self, upstream_port: int, workdir: Path) -> None:
        self.workdir = workdir
        self.http_port = free_port()
        self.https_port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.certificate = self_signed_certificate(workdir / "certs")
        self.config = workdir / "nginx.conf"
        self.config.write_text(local_config(upstream_port, self.http_port, self.https_port,
                                            workdir / "certs", workdir))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def access_log(self) -> str:
        path = self.workdir / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 20) -> NginxServer:
        check = subprocess.run([str(NGINX), "-t", "-q", "-c", str(self.config)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([str(NGINX), "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{self.error_log[-2000:]}")
            time.sleep(0.05)
        return self

    def _listening(self) -> bool:
        try:
            for port in (self.http_port, self.https_port):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)  # graceful
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
