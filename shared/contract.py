"""The contract between the tiers: task names, queues, payloads and the link path.

The web tier publishes by name (`send_task`) and never imports worker code, so these
strings, not module paths, are what keeps the two tiers in step. Payloads are small
JSON: an outbox row id, never an address, a token or password material, because Redis
and Flower show task arguments to whoever can read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EMAIL_QUEUE = "email"
SEND_PASSWORD_RESET = "email.send_password_reset"
SEND_PASSWORD_CHANGED = "email.send_password_changed"

RESET_PASSWORD_PATH = "/reset_password/<token>"
# Where the "your password was changed" notice sends someone who did not change it.
RESET_PASSWORD_REQUEST_PATH = "/reset_password_request"


@dataclass(frozen=True)
class DeliveryPayload:
    """The keyword arguments of every email task."""

    delivery_id: str

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)

    def display(self) -> str:
        """What task events (and so Flower) show for the arguments."""
        return repr(self.as_kwargs())


TASK_ROUTES: dict[str, dict[str, str]] = {
    SEND_PASSWORD_RESET: {"queue": EMAIL_QUEUE},
    SEND_PASSWORD_CHANGED: {"queue": EMAIL_QUEUE},
}


def task_id_for(delivery_id: str, attempt: int) -> str:
    """The task id of a delivery's `attempt`-th attempt (1 for the first): `<id>-<n>`.

    Flower then lists one email's attempts under the same prefix, and shows `attempt - 1`
    in its Retries column (the message's `retries` field, which publishers set to match).
    A message republished for the same attempt (it was lost, or sat too long) carries
    the same id: it is the same attempt.
    """
    return f"{delivery_id}-{attempt}"


def reset_password_url(base_url: str, token: str) -> str:
    """The absolute link the email carries; the web tier serves the same path."""
    return base_url.rstrip("/") + RESET_PASSWORD_PATH.replace("<token>", token)


def reset_password_request_url(base_url: str) -> str:
    return base_url.rstrip("/") + RESET_PASSWORD_REQUEST_PATH
