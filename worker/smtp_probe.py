"""At worker start, one look at the SMTP relay: is it there, and is its TLS trusted?

Otherwise an untrusted certificate or a wrong MAIL_SERVER shows only when the first
email fails. The probe connects, encrypts and verifies as a send would, says EHLO and
QUIT (no AUTH, no mail), and logs one line: INFO when all is well, ERROR when not. It
runs in a thread of its own with a short timeout, so a slow or absent relay neither
holds up the worker's start nor stops it.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from shared.config import Settings
from worker import smtp
from worker.smtp_errors import classify

PROBE_TIMEOUT_SECONDS = 5.0
log = logging.getLogger("worker.smtp")


def probe(settings: Settings) -> tuple[int, str]:
    """The log level and line that describe the relay as this worker sees it."""
    where = f"{settings.mail_server}:{settings.mail_port}"
    timeout = min(settings.smtp_timeout_seconds, PROBE_TIMEOUT_SECONDS)
    try:
        host = smtp.connect(settings, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the operator reads one line
        reason = classify(exc).reason
        return logging.ERROR, (f'event=smtp.probe server={where} result=failed reason="{reason}"'
                               " (emails wait in the outbox until this is fixed)")
    try:
        tls = host.sock.version() if smtp.is_encrypted(host) else None  # type: ignore[union-attr]
    finally:
        try:
            host.quit()
        except (smtplib.SMTPException, OSError):
            host.close()
    if tls is None:
        return logging.INFO, f"event=smtp.probe server={where} result=ok tls=off"
    mode = "implicit" if settings.mail_use_ssl else "starttls"
    return logging.INFO, (f"event=smtp.probe server={where} result=ok tls={mode} "
                          f"version={tls} certificate=verified")


def run(settings: Settings) -> None:
    level, line = probe(settings)
    log.log(level, line)


def start(settings: Settings) -> threading.Thread:
    thread = threading.Thread(target=run, args=(settings,), name="smtp-probe", daemon=True)
    thread.start()
    return thread


def connect(celery: Celery, settings: Settings) -> None:
    """Probe once when this app's `celery worker` is ready (not in beat, not in pool
    children)."""

    def on_ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is celery:
            start(settings)

    worker_ready.connect(on_ready, weak=False)
