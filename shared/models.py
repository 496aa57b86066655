"""The tables both tiers read: accounts, their sign-ins and the email outbox."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    bindparam,
    delete,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.orm import Mapped, mapped_column

from shared.clock import utcnow
from shared.database import db
from shared.passwords import password_hashing


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes; SQLite hands back naive ones, which are UTC by construction."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """An account.

    Two counters make old credentials die: `reset_generation` is bumped each time a reset
    link is minted (and when one is spent), and a link is honoured only while it carries the
    current value, so the newest link wins and a used one is dead. `session_version` is
    copied into every `LoginSession` at sign-in, and a sign-in counts only while it holds
    the current value: bumping it signs out every browser at once, including one whose
    sign-in was being recorded at that very moment.
    """

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    reset_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def set_password(self, password: str) -> None:
        self.password_hash = password_hashing().hash(password)

    def check_password(self, password: str) -> bool:
        return password_hashing().verify(self.password_hash, password)

    def upgrade_password_hash(self, password: str) -> bool:
        """Hash a password just checked again if its hash is of an older scheme or cost.

        One UPDATE on the hash that was checked: a password reset committed meanwhile keeps
        its new password. True when the hash changed; the caller commits. Reset links minted
        before it stop working, as after any change of the hash.
        """
        hashing = password_hashing()
        if not hashing.needs_rehash(self.password_hash):
            return False
        result = db.session.execute(
            update(User)
            .where(User.id == self.id, User.password_hash == self.password_hash)
            .values(password_hash=hashing.hash(password))
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    @property
    def is_active(self) -> bool:
        """Flask-Login refuses to sign in an inactive account."""
        return bool(self.active)

    # Equality is identity, as for any mapped object: UserMixin's compares `get_id()`,
    # which only a signed-in user has.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def get_id(self) -> str:
        """What the session and the remember-me cookie hold: the token of this browser's
        `LoginSession`, set on the object when it signs in or is loaded through one (see
        web/login_sessions.py). Never the account id: ending that sign-in ends both."""
        token = self.__dict__.get("login_token")
        if not isinstance(token, str):
            raise RuntimeError("this account object was not signed in through a LoginSession")
        return token

    @classmethod
    def find_for_reset(cls, email: str) -> Row[Any] | None:
        """The account a reset email may go to: an active one with exactly this address.

        A plain row of the columns an email needs (id, username, email, password_hash),
        by a statement built once: the worker asks this for every reset it sends.
        """
        return db.session.execute(_FIND_FOR_RESET, {"email": email}).one_or_none()

    @classmethod
    def bump_reset_generation(cls, user_id: int) -> int:
        """Start a new reset generation and return it; links of older ones stop working.

        The worker calls this when it mints a link and puts the value in the token, so the
        newest link wins. One UPDATE ... RETURNING; the caller commits it (the worker, with
        its claim of the delivery) before the link leaves: a link whose generation was
        never committed would be dead on arrival. Two workers minting for the same
        account get different values, and the later one wins.
        """
        generation = db.session.execute(_BUMP_RESET_GENERATION, {"user_id": user_id}).scalar_one()
        return int(generation)

    def __repr__(self) -> str:
        return f"<User {self.id}>"


_users = User.__table__
_FIND_FOR_RESET = select(
    _users.c.id, _users.c.username, _users.c.email, _users.c.password_hash
).where(_users.c.email == bindparam("email"), _users.c.active.is_(True))
_BUMP_RESET_GENERATION = (
    update(_users)
    .where(_users.c.id == bindparam("user_id"))
    .values(reset_generation=_users.c.reset_generation + 1)
    .returning(_users.c.reset_generation)
)


class LoginSession(db.Model):  # type: ignore[name-defined,misc]
    """One signed-in browser: its session cookie and its remember-me cookie hold a random
    token, and this row its SHA-256 (`id`), so a copy of the table signs nobody in.

    Deleting the row signs that browser out, whichever cookie it still has; deleting all of
    an account's rows, with a bump of `User.session_version`, signs out every browser. A row
    holds the session version of its sign-in and counts only while the account's is the same.
    """

    __tablename__ = "login_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    session_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # A summary such as "Firefox on Linux", for the account page; never the full header.
    user_agent: Mapped[str] = mapped_column(String(64))

    @classmethod
    def purge_ended(cls, now: datetime) -> int:
        """Delete the rows of sign-ins that ran out or that a version bump ended; return
        how many. The caller commits (`flask sessions purge`, or a periodic sweep)."""
        account_version = (
            select(_users.c.session_version)
            .where(_users.c.id == cls.user_id)
            .scalar_subquery()
        )
        result = db.session.execute(
            delete(cls).where(or_(cls.expires_at <= now, cls.session_version != account_version))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<LoginSession of user {self.user_id}>"


class DeliveryKind(StrEnum):
    PASSWORD_RESET = "password_reset"
    PASSWORD_CHANGED = "password_changed"  # the "your password was changed" notice


class DeliveryStatus(StrEnum):
    """Where an outbox row is on its way to the SMTP server."""

    QUEUED = "queued"  # committed by the web tier, waiting for a worker
    SENDING = "sending"  # claimed by a worker until `lease_until`
    RETRYING = "retrying"  # a transient failure; due again at `next_attempt_at`
    SENT = "sent"  # the SMTP server accepted it
    NO_ACCOUNT = "no_account"  # nobody has that address: nothing to send, by design
    THROTTLED = "throttled"  # over a rate limit: recorded and published alike, never sent
    FAILED = "failed"  # dead letter: permanent refusal or retries exhausted
    EXPIRED = "expired"  # the link would have expired before delivery


# Statuses a row never leaves (short of an operator's `deliveries retry`).
FINAL_STATUSES = (
    DeliveryStatus.SENT,
    DeliveryStatus.NO_ACCOUNT,
    DeliveryStatus.FAILED,
    DeliveryStatus.EXPIRED,
)


class EmailDelivery(db.Model):  # type: ignore[name-defined,misc]
    """An outbox row: the web tier commits it, then publishes only its id.

    Every moment here that decides who may take the row is written by the database's
    clock (`shared.db_clock.db_now`), never a worker's. `relay_after` is when the outbox
    relay should (re)publish the row if it is still unfinished: unset means "the web tier
    published it" (the relay steps in only once the row has waited `OUTBOX_STALE_AFTER`);
    the web sets it to now when its publish failed, and the relay pushes it forward each
    time it republishes.
    """

    __tablename__ = "email_delivery"
    # The relay's due query reads unfinished rows by status, retries by due time (0005).
    __table_args__ = (Index("ix_email_delivery_status_next_attempt_at", "status",
                            "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), index=True, default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    relay_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    relays: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @classmethod
    def new(cls, kind: DeliveryKind, email: str) -> EmailDelivery:
        """A queued row whose age the database's clock measures (the relay's staleness)."""
        from shared.db_clock import db_now  # it types itself with UTCDateTime, above

        now = db_now()
        return cls(
            id=secrets.token_hex(16),
            kind=kind.value,
            email=email,
            status=DeliveryStatus.QUEUED.value,
            attempts=0,
            created_at=now,
            updated_at=now,
            relays=0,
        )

    def __repr__(self) -> str:
        return f"<EmailDelivery {self.id} {self.status}>"


class DeliveryAttempt(db.Model):  # type: ignore[name-defined,misc]
    """One claim of an outbox row by a worker, and how it ended.

    Written when the worker claims the row and completed with the outcome, so an attempt
    that never finished (its worker was killed) stays visible with no outcome.
    """

    __tablename__ = "email_delivery_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("email_delivery.id", ondelete="CASCADE"), index=True
    )
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # For a transient failure: when the next attempt was scheduled (the backoff chosen).
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"<DeliveryAttempt {self.delivery_id} {self.outcome}>"


class RelaySweep(db.Model):  # type: ignore[name-defined,misc]
    """The outbox relay's record of its sweeps: one row per sweep name (`outbox`).

    Every worker runs the relay; before sweeping, one takes this row's short lease
    (`lease_until`, computed by the database clock), so N workers sweep about as often as
    one. `last_swept_at` is when a sweep last finished: health and metrics read it to tell
    a stalled relay from a quiet one.
    """

    __tablename__ = "relay_sweep"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_swept_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"<RelaySweep {self.name}>"
