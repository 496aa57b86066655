"""Which account a reset link opens, and spending it: once, newest only, same password only.

A link is live while its signature checks out (current key or a fallback), it has not
expired, its account is active, its `gen` is the account's current reset generation (so a
newer link or a spent one is dead) and its password fingerprint matches (so any password
change kills it). Spending is one conditional UPDATE on exactly those values, which sets the
new password, moves the generation on and signs out every session at once: of two requests
racing with the same link, only one changes anything.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import update

from shared.config import Settings
from shared.database import db
from shared.models import User
from shared.passwords import password_hashing
from shared.tokens import InvalidResetToken, ResetClaims, read_reset_token
from web.login_sessions import forget_sign_ins
from web.notifications import publish_password_changed_notice, record_password_changed_notice

log = logging.getLogger(__name__)


def open_reset_link(token: str) -> tuple[User, ResetClaims]:
    """The account a live token belongs to; raise `InvalidResetToken` (or expired) otherwise."""
    settings: Settings = current_app.config["SETTINGS"]
    fallbacks = [key.get_secret_value() for key in settings.secret_key_fallbacks]
    claims = read_reset_token(settings.secret_key.get_secret_value(), token, fallbacks)
    user = db.session.get(User, claims.user_id)
    if (
        user is None
        or not user.is_active
        or user.reset_generation != claims.generation
        or not claims.matches_password(user.password_hash)
    ):
        raise InvalidResetToken("used, superseded or issued for another password")
    return user, claims


def spend_reset_link(user: User, claims: ResetClaims, new_password: str) -> bool:
    """Set the new password if the link is still the live one; False if it no longer is."""
    new_hash = password_hashing().hash(new_password)
    result = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            User.reset_generation == claims.generation,
            User.password_hash == user.password_hash,
        )
        .values(
            password_hash=new_hash,
            reset_generation=User.reset_generation + 1,
            session_version=User.session_version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        log.info("reset link refused reason=spent-concurrently user=%s", user.id)
        return False
    forget_sign_ins(user.id)  # the session_version bump above already ended them
    notice = record_password_changed_notice(user.email)
    db.session.commit()
    log.info("password reset user=%s", user.id)
    publish_password_changed_notice(notice)
    return True
