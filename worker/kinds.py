"""What each kind of outbox row becomes: its task name, its message, its deadline.

The delivery machine (claim, send, retry, dead-letter) is the same for every kind; only
this table differs. The relay republishes a row under its kind's task name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_mail import Message
from sqlalchemy import select

from shared.clock import utcnow
from shared.config import Settings
from shared.contract import (
    SEND_PASSWORD_CHANGED,
    SEND_PASSWORD_RESET,
    reset_password_request_url,
    reset_password_url,
)
from shared.database import db
from shared.models import DeliveryKind, DeliveryStatus, EmailDelivery, User
from shared.tokens import issue_reset_token
from worker.rendering import password_changed_message, password_reset_message

# A link with less life left than this is not worth sending: it would die in the inbox.
MIN_LINK_LIFETIME = timedelta(seconds=60)


@dataclass(frozen=True)
class Skip:
    """Nothing to send, by design or because it is too late: the row's final status."""

    status: DeliveryStatus
    reason: str | None = None


Prepared = Message | Skip


@dataclass(frozen=True)
class Kind:
    task_name: str
    prepare: Callable[[EmailDelivery, Settings], Prepared]
    # The last moment an attempt is still worth making; None: no deadline.
    deadline: Callable[[EmailDelivery, Settings], datetime | None]


def _account(delivery: EmailDelivery) -> User | None:
    return db.session.scalar(select(User).where(User.email == delivery.email))


def _link_expires_at(delivery: EmailDelivery, settings: Settings) -> datetime:
    return delivery.created_at + timedelta(minutes=settings.reset_token_minutes)


def _reset_deadline(delivery: EmailDelivery, settings: Settings) -> datetime:
    return _link_expires_at(delivery, settings) - MIN_LINK_LIFETIME


def _prepare_reset(delivery: EmailDelivery, settings: Settings) -> Prepared:
    if utcnow() > _reset_deadline(delivery, settings):
        return Skip(DeliveryStatus.EXPIRED, "link would expire before delivery")
    user = User.find_for_reset(delivery.email)  # inactive accounts get nothing
    if user is None:
        return Skip(DeliveryStatus.NO_ACCOUNT)
    expires_at = _link_expires_at(delivery, settings)
    # The token's lifetime counts from the request, not from this attempt. Minting moves
    # the account's reset generation on, so every older link dies (newest wins).
    token = issue_reset_token(
        settings.secret_key, user.id, user.password_hash,
        ttl=expires_at - delivery.created_at, now=delivery.created_at,
        generation=User.bump_reset_generation(user.id),
    )
    link = reset_password_url(settings.link_base_url, token)
    minutes_left = max(1, math.ceil((expires_at - utcnow()).total_seconds() / 60))
    return password_reset_message(user, link, minutes_left)


def _prepare_password_changed(delivery: EmailDelivery, settings: Settings) -> Prepared:
    user = _account(delivery)
    if user is None:
        return Skip(DeliveryStatus.NO_ACCOUNT)
    return password_changed_message(
        user, delivery.created_at, reset_password_request_url(settings.link_base_url)
    )


def _no_deadline(delivery: EmailDelivery, settings: Settings) -> None:
    return None


KINDS: dict[str, Kind] = {
    DeliveryKind.PASSWORD_RESET.value: Kind(SEND_PASSWORD_RESET, _prepare_reset, _reset_deadline),
    DeliveryKind.PASSWORD_CHANGED.value: Kind(
        SEND_PASSWORD_CHANGED, _prepare_password_changed, _no_deadline
    ),
}
