"""Old finished outbox rows go, in small batches, attempts with them; everything else stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import event, func, select, text

from shared.clock import utcnow
from shared.database import db
from shared.models import DeliveryAttempt, DeliveryStatus, EmailDelivery, LoginSession, User
from worker.retention import FINISHED, delete_ended_sign_ins, delete_finished

WEEK = timedelta(days=7)


def add(outbox, status: DeliveryStatus, age: timedelta, attempts: int = 1) -> str:
    when = utcnow() - age
    delivery_id = outbox.add(status=status.value, created_at=when, updated_at=when)
    with outbox.app.app_context():
        for _ in range(attempts):
            db.session.add(DeliveryAttempt(delivery_id=delivery_id, worker="w:1",
                                           started_at=when, outcome=status.value))
        db.session.commit()
    return delivery_id


def remaining(app: Flask) -> tuple[set[str], int]:
    with app.app_context():
        ids = set(db.session.scalars(select(EmailDelivery.id)))
        attempts = db.session.scalar(select(func.count()).select_from(DeliveryAttempt))
        return ids, int(attempts or 0)


def test_every_final_state_is_deleted_after_the_retention_with_its_attempts(
        worker_app: Flask, outbox):
    final = [DeliveryStatus(value) for value in FINISHED]
    assert DeliveryStatus.THROTTLED in final and DeliveryStatus.FAILED in final
    for status in final:
        add(outbox, status, WEEK + timedelta(hours=1), attempts=2)

    with worker_app.app_context():
        assert delete_finished(WEEK) == len(final)

    assert remaining(worker_app) == (set(), 0)


def test_recent_rows_and_unfinished_rows_stay(worker_app: Flask, outbox):
    recent = add(outbox, DeliveryStatus.SENT, WEEK - timedelta(hours=1))
    old_unfinished = {add(outbox, status, WEEK * 4) for status in
                      (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING, DeliveryStatus.SENDING)}
    add(outbox, DeliveryStatus.SENT, WEEK * 2)

    with worker_app.app_context():
        assert delete_finished(WEEK) == 1

    assert remaining(worker_app) == ({recent, *old_unfinished}, 4)


def test_a_backlog_goes_in_batches_each_its_own_transaction(worker_app: Flask, outbox):
    for _ in range(7):
        add(outbox, DeliveryStatus.NO_ACCOUNT, WEEK * 2)
    commits = []

    def count(connection: object) -> None:
        commits.append(connection)

    with worker_app.app_context():
        event.listen(db.engine, "commit", count)
        try:
            assert delete_finished(WEEK, batch=3) == 7
        finally:
            event.remove(db.engine, "commit", count)
    assert len(commits) >= 3  # 3 + 3 + 1 rows
    assert remaining(worker_app) == (set(), 0)


def test_sqlite_enforces_the_cascade_to_attempts(worker_app: Flask, outbox):
    """shared/database.py turns SQLite's foreign keys on; without it attempts would linger."""
    delivery_id = add(outbox, DeliveryStatus.SENT, timedelta(), attempts=3)
    with worker_app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the SQLite pragma; PostgreSQL always enforces foreign keys")
        assert db.session.scalar(text("PRAGMA foreign_keys")) == 1
        db.session.execute(text("DELETE FROM email_delivery WHERE id = :id"),
                           {"id": delivery_id})
        db.session.commit()
    assert remaining(worker_app) == (set(), 0)


def test_the_sweep_also_deletes_sign_ins_that_ended(worker_app: Flask):
    """Expired sign-ins, and those a version bump ended, go; live ones stay."""
    now = utcnow()

    def sign_in(user_id: int, token: str, expires_in: timedelta, version: int = 0) -> None:
        db.session.add(LoginSession(id=token, user_id=user_id, session_version=version,
                                    created_at=now, last_seen_at=now,
                                    expires_at=now + expires_in, user_agent="Firefox on Linux"))

    with worker_app.app_context():
        user = User(username="susan", email="susan@example.com", password_hash="unused")
        db.session.add(user)
        db.session.commit()
        sign_in(user.id, "live", timedelta(days=1))
        sign_in(user.id, "ran-out", -timedelta(minutes=1))
        sign_in(user.id, "ended-by-a-bump", timedelta(days=1), version=-1)
        db.session.commit()
        assert delete_ended_sign_ins() == 2
        assert set(db.session.scalars(select(LoginSession.id))) == {"live"}
