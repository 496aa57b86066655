"""One clock for the whole project, timezone-aware, so tests can reason about expiry."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
