"""Operator commands: list by state, show one with its attempts, retry dead ones, purge."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from shared.clock import utcnow
from shared.database import db
from shared.models import DeliveryAttempt, DeliveryKind, EmailDelivery


def add(app: Flask, email: str, **fields: object) -> str:
    with app.app_context():
        row = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, email)
        for name, value in fields.items():
            setattr(row, name, value)
        db.session.add(row)
        db.session.commit()
        return row.id


def row(app: Flask, delivery_id: str) -> EmailDelivery | None:
    with app.app_context():
        found = db.session.get(EmailDelivery, delivery_id)
        if found is not None:
            db.session.expunge(found)
        return found


def test_list_counts_by_state_and_filters_without_showing_addresses(app: Flask):
    add(app, "susan@example.com", status="sent")
    dead = add(app, "bob@example.com", status="failed", last_error="550 no such user")
    result = app.test_cli_runner().invoke(args=["deliveries", "list", "--status", "failed"])
    assert result.exit_code == 0, result.output
    assert "sent=1" in result.output and "failed=1" in result.output
    assert dead in result.output and "550 no such user" in result.output
    assert "b***@example.com" in result.output
    assert "bob@example.com" not in result.output and "susan" not in result.output

    by_address = app.test_cli_runner().invoke(
        args=["deliveries", "list", "--email", "Susan@Example.com"])
    assert "s***@example.com" in by_address.output and dead not in by_address.output


def test_show_lists_each_attempt_with_the_wait_before_it(app: Flask):
    created = utcnow() - timedelta(seconds=30)
    delivery_id = add(app, "susan@example.com", status="sent", attempts=2, created_at=created)
    with app.app_context():
        db.session.add_all([
            DeliveryAttempt(delivery_id=delivery_id, worker="w1:1", outcome="retrying",
                            error="451 later", started_at=created + timedelta(seconds=1),
                            finished_at=created + timedelta(seconds=2),
                            retry_at=created + timedelta(seconds=4.5)),
            DeliveryAttempt(delivery_id=delivery_id, worker="w2:2", outcome=None,
                            started_at=created + timedelta(seconds=5)),
        ])
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["deliveries", "show", delivery_id])
    assert result.exit_code == 0, result.output
    assert "attempt 1:" in result.output
    assert "(+1.0s) retrying next in 2.5s 451 later" in result.output
    assert "attempt 2:" in result.output and "(+4.0s) did not finish" in result.output

    missing = app.test_cli_runner().invoke(args=["deliveries", "show", "nope"])
    assert missing.exit_code != 0 and "no delivery nope" in missing.output


def test_retry_requeues_only_dead_letters_for_the_relay(app: Flask):
    dead = add(app, "a@example.com", status="failed", attempts=10, last_error="gave up")
    sent = add(app, "b@example.com", status="sent")
    result = app.test_cli_runner().invoke(args=["deliveries", "retry", dead, sent])
    assert result.exit_code == 0, result.output
    assert "1 dead-lettered row(s) queued again" in result.output
    again = row(app, dead)
    assert again.status == "queued" and again.attempts == 0
    assert again.relay_after is not None and again.relay_after <= utcnow()
    assert row(app, sent).status == "sent"

    nothing = app.test_cli_runner().invoke(args=["deliveries", "retry"])
    assert nothing.exit_code != 0


def test_purge_deletes_old_finished_rows_and_keeps_the_rest(app: Flask):
    old = utcnow() - timedelta(days=40)
    old_sent = add(app, "a@example.com", status="sent", updated_at=old)
    old_dead = add(app, "b@example.com", status="failed", updated_at=old)
    old_waiting = add(app, "c@example.com", status="retrying", updated_at=old)
    new_sent = add(app, "d@example.com", status="sent")
    with app.app_context():
        db.session.add(DeliveryAttempt(delivery_id=old_sent, worker="w", outcome="sent"))
        db.session.commit()

    result = app.test_cli_runner().invoke(
        args=["deliveries", "purge", "--older-than-days", "30", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Purged 1 row(s)." in result.output
    assert row(app, old_sent) is None
    assert all(row(app, i) for i in (old_dead, old_waiting, new_sent))
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(DeliveryAttempt)) == 0

    declined = app.test_cli_runner().invoke(
        args=["deliveries", "purge", "--older-than-days", "30", "--include-failed"], input="n\n")
    assert declined.exit_code != 0 and row(app, old_dead) is not None
    accepted = app.test_cli_runner().invoke(
        args=["deliveries", "purge", "--older-than-days", "30", "--include-failed"], input="y\n")
    assert "Purged 1 row(s)." in accepted.output and row(app, old_dead) is None
