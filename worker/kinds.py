"""What each kind of outbox row becomes: its task name, its recipient, its message.

The delivery machine (claim, send, retry, dead-letter) is the same for every kind; only
this table differs. A kind works in two steps: `resolve` runs inside the claim's
transaction and decides who gets the email, or why nobody does (its writes, such as a
reset's new link generation, commit with the claim); `compose` runs after that commit
and builds the message without touching the database. The relay republishes a row
under its kind's task name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_mail import Message
from sqlalchemy import select

from shared.config import Settings
from shared.contract import (
    SEND_PASSWORD_CHANGED,
    SEND_PASSWORD_RESET,
    reset_password_request_url,
    reset_password_url,
)
from shared.database import db
from shared.models import DeliveryKind, DeliveryStatus, User
from shared.tokens import issue_reset_token
from worker.outbox import ClaimedRow
from worker.rendering import Recipient, password_changed_message, password_reset_message

# A link with less life left than this is not worth sending: it would die in the inbox.
MIN_LINK_LIFETIME = timedelta(seconds=60)


@dataclass(frozen=True)
class Skip:
    """Nothing to send, by design or because it is too late: the row's final status."""

    status: DeliveryStatus
    reason: str | None = None


@dataclass(frozen=True)
class ResetRecipient(Recipient):
    """A reset's recipient, with the link generation minted for this attempt."""

    generation: int = 0


@dataclass(frozen=True)
class Kind:
    task_name: str
    resolve: Callable[[ClaimedRow, Settings], Recipient | Skip]
    compose: Callable[[ClaimedRow, Recipient, Settings], Message]
    # The last moment an attempt is still worth making; None: no deadline.
    deadline: Callable[[ClaimedRow, Settings], datetime | None]


def _recipient(user: User) -> Recipient:
    return Recipient(user.id, user.username, user.email, user.password_hash)


def _link_expires_at(delivery: ClaimedRow, settings: Settings) -> datetime:
    return delivery.created_at + timedelta(minutes=settings.reset_token_minutes)


def _reset_deadline(delivery: ClaimedRow, settings: Settings) -> datetime:
    return _link_expires_at(delivery, settings) - MIN_LINK_LIFETIME


def _resolve_reset(delivery: ClaimedRow, settings: Settings) -> Recipient | Skip:
    if delivery.claimed_at > _reset_deadline(delivery, settings):  # the database's clock
        return Skip(DeliveryStatus.EXPIRED, "link would expire before delivery")
    user = User.find_for_reset(delivery.email)  # inactive accounts get nothing
    if user is None:
        return Skip(DeliveryStatus.NO_ACCOUNT)
    # Minting moves the account's reset generation on, so every older link dies (newest
    # wins); it commits with the claim, before the link can leave.
    generation = User.bump_reset_generation(user.id)
    return ResetRecipient(user.id, user.username, user.email, user.password_hash,
                          generation=generation)


def _compose_reset(delivery: ClaimedRow, recipient: Recipient, settings: Settings) -> Message:
    assert isinstance(recipient, ResetRecipient)
    expires_at = _link_expires_at(delivery, settings)
    # The token's lifetime counts from the request, not from this attempt.
    token = issue_reset_token(
        settings.secret_key.get_secret_value(), recipient.user_id, recipient.password_hash,
        ttl=expires_at - delivery.created_at, now=delivery.created_at,
        generation=recipient.generation,
    )
    link = reset_password_url(settings.link_base_url, token)
    minutes_left = max(1, math.ceil((expires_at - delivery.claimed_at).total_seconds() / 60))
    return password_reset_message(recipient, link, minutes_left)


def _resolve_password_changed(delivery: ClaimedRow, settings: Settings) -> Recipient | Skip:
    user = db.session.scalar(select(User).where(User.email == delivery.email))
    return Skip(DeliveryStatus.NO_ACCOUNT) if user is None else _recipient(user)


def _compose_password_changed(delivery: ClaimedRow, recipient: Recipient,
                              settings: Settings) -> Message:
    return password_changed_message(
        recipient, delivery.created_at, reset_password_request_url(settings.link_base_url)
    )


def _no_deadline(delivery: ClaimedRow, settings: Settings) -> None:
    return None


KINDS: dict[str, Kind] = {
    DeliveryKind.PASSWORD_RESET.value: Kind(
        SEND_PASSWORD_RESET, _resolve_reset, _compose_reset, _reset_deadline
    ),
    DeliveryKind.PASSWORD_CHANGED.value: Kind(
        SEND_PASSWORD_CHANGED, _resolve_password_changed, _compose_password_changed,
        _no_deadline,
    ),
}
