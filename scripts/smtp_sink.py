"""A local SMTP server (aiosmtpd) that prints every email it accepts, for `make run`."""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import sys
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else "(no text part)"


class PrintingHandler:
    """Prints the envelope, the headers that matter and the plain-text part."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        kinds = [part.get_content_type() for part in message.walk() if not part.is_multipart()]
        lines = [
            "=" * 72,
            f"From: {message['From']}",
            f"To: {', '.join(envelope.rcpt_tos)}",
            f"Subject: {message['Subject']}",
            f"Parts: {', '.join(kinds)}",
            "-" * 72,
            text_part(message).rstrip(),
            "=" * 72,
        ]
        print("\n".join(lines), flush=True)
        return "250 Message accepted for delivery"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    controller = Controller(PrintingHandler(), hostname=args.host, port=args.port)
    controller.start()
    print(f"SMTP sink listening on {args.host}:{args.port}; emails print here", flush=True)
    try:
        asyncio.run(_forever())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        sys.stdout.flush()


async def _forever(**_: Any) -> None:
    await asyncio.Event().wait()


if __name__ == "__main__":
    main()
