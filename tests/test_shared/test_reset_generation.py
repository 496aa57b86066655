"""The account state behind newest-wins links, and the worker's part in it."""

from __future__ import annotations

import re

from flask import Flask

from shared.database import db
from shared.models import DeliveryKind, EmailDelivery, User
from shared.tokens import read_reset_token
from worker.app import mail
from worker.tasks import send_password_reset


def generation_of(app: Flask, user_id: int) -> int:
    with app.app_context():
        return db.session.get(User, user_id).reset_generation


def test_each_bump_returns_a_new_generation_that_lives_in_the_callers_transaction(
        app: Flask, user: User):
    with app.app_context():
        assert User.bump_reset_generation(user.id) == 1
        assert User.bump_reset_generation(user.id) == 2
        db.session.rollback()
    assert generation_of(app, user.id) == 0
    with app.app_context():
        assert User.bump_reset_generation(user.id) == 1
        db.session.commit()
    assert generation_of(app, user.id) == 1


def test_find_for_reset_skips_inactive_accounts(app: Flask, user: User):
    with app.app_context():
        assert User.find_for_reset("susan@example.com").id == user.id
        db.session.get(User, user.id).active = False
        db.session.commit()
        assert User.find_for_reset("susan@example.com") is None
        assert User.find_for_reset("nobody@example.com") is None


def queue(app: Flask, email: str) -> str:
    with app.app_context():
        delivery = EmailDelivery.new(DeliveryKind.PASSWORD_RESET, email)
        db.session.add(delivery)
        db.session.commit()
        return delivery.id


def test_the_worker_puts_a_fresh_generation_in_every_link(worker_app: Flask, user: User):
    ids = [queue(worker_app, "susan@example.com") for _ in range(2)]
    with worker_app.app_context(), mail.record_messages() as outbox:
        for delivery_id in ids:
            send_password_reset.run(delivery_id)
    tokens = [re.search(r"/reset_password/(\S+)", m.body).group(1) for m in outbox]
    secret = worker_app.config["SECRET_KEY"]
    assert [read_reset_token(secret, t).generation for t in tokens] == [1, 2]
    assert generation_of(worker_app, user.id) == 2


def test_the_worker_sends_nothing_to_an_inactive_account(worker_app: Flask, user: User):
    with worker_app.app_context():
        db.session.get(User, user.id).active = False
        db.session.commit()
    delivery_id = queue(worker_app, "susan@example.com")
    with worker_app.app_context(), mail.record_messages() as outbox:
        assert send_password_reset.run(delivery_id) == "no_account"
    assert outbox == []
    assert generation_of(worker_app, user.id) == 0
