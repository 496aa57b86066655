"""One log line per delivery event, from both tiers, in a form tools can parse.

`event=reset.requested delivery=3f2a… to=s***@example.com` — key=value pairs after a fixed
event name, always with the delivery id, never a full address, a token or a password.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("delivery")


def _format(value: Any) -> str:
    text = str(value)
    if not text or any(ch.isspace() or ch in '"=' for ch in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def delivery_event(event: str, delivery_id: str, level: int = logging.INFO, **fields: Any) -> None:
    parts = [f"event={event}", f"delivery={delivery_id}"]
    parts += [f"{key}={_format(value)}" for key, value in fields.items() if value is not None]
    log.log(level, " ".join(parts))
