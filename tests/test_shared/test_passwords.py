"""Password hashing: argon2id at the configured cost; older hashes verify and are replaced
at the next successful sign-in."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.factories import PASSWORD, make_user
from werkzeug.security import generate_password_hash

from shared.config import ConfigError, Settings
from shared.database import db
from shared.models import User
from shared.passwords import PasswordHashing, password_hashing
from web import create_app

CHEAP = PasswordHashing(memory_kib=8, time_cost=1, parallelism=1)


def test_production_cost_is_owasps_argon2id():
    hashing = PasswordHashing.parse(Settings().password_hash_method)
    assert (hashing.memory_kib, hashing.time_cost, hashing.parallelism) == (19456, 2, 1)
    assert Settings.from_env({"PASSWORD_HASH_METHOD": "argon2id:m=65536,t=3,p=4"}
                             ).password_hash_method == "argon2id:m=65536,t=3,p=4"


@pytest.mark.parametrize("method", ["scrypt:131072:8:1", "argon2id", "argon2id:m=19456,t=2",
                                    "argon2i:m=19456,t=2,p=1", "argon2id:m=lots,t=2,p=1",
                                    "argon2id:m=19456,t=2,p=1,x=3", "argon2id:m=4,t=1,p=1",
                                    "argon2id:m=19456,t=0,p=1"])
def test_a_malformed_method_is_named(method: str):
    with pytest.raises(ConfigError, match="PASSWORD_HASH_METHOD"):
        PasswordHashing.parse(method)


def test_a_malformed_method_stops_the_app_at_start(settings: Settings):
    with pytest.raises(ConfigError, match="PASSWORD_HASH_METHOD"):
        create_app(settings.with_overrides(password_hash_method="bcrypt"))


def test_hashes_are_argon2id_at_the_configured_cost():
    stored = CHEAP.hash("a long passphrase")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert CHEAP.verify(stored, "a long passphrase")
    assert not CHEAP.verify(stored, "a wrong passphrase")
    assert not CHEAP.needs_rehash(stored)
    assert CHEAP.hash("a long passphrase") != stored  # salted


@pytest.mark.parametrize("method", ["scrypt:1024:8:1", "pbkdf2:sha256:1000"])
def test_werkzeug_hashes_still_verify_and_ask_to_be_replaced(method: str):
    stored = generate_password_hash("a long passphrase", method=method)
    assert CHEAP.verify(stored, "a long passphrase")
    assert not CHEAP.verify(stored, "a wrong passphrase")
    assert CHEAP.needs_rehash(stored)


def test_argon2id_at_another_cost_asks_to_be_replaced():
    stronger = PasswordHashing(memory_kib=16, time_cost=2, parallelism=1)
    stored = CHEAP.hash("a long passphrase")
    assert stronger.verify(stored, "a long passphrase")  # still verifies at its own cost
    assert stronger.needs_rehash(stored)


def test_garbage_in_the_column_fails_to_verify_rather_than_raise():
    assert not CHEAP.verify("$argon2id$v=19$garbage", "x")
    assert CHEAP.needs_rehash("$argon2id$v=19$garbage")


def test_unknown_names_spend_a_check_at_the_current_cost():
    assert CHEAP.check_against_nobody("a guess") is False


def legacy_user(app: Flask, method: str = "pbkdf2:sha256:1000") -> User:
    user = make_user(app)
    with app.app_context():
        db.session.execute(db.update(User).where(User.id == user.id).values(
            password_hash=generate_password_hash(PASSWORD, method=method)))
        db.session.commit()
    return user


def stored_hash(app: Flask, user: User) -> str:
    with app.app_context():
        return db.session.get(User, user.id).password_hash


def test_an_old_hash_is_replaced_at_the_next_successful_sign_in(app: Flask, client: FlaskClient):
    user = legacy_user(app)
    old = stored_hash(app, user)
    response = client.post("/login", data={"username": "susan", "password": "a wrong guess"})
    assert response.headers["Location"] == "/login"
    assert stored_hash(app, user) == old  # a wrong password changes nothing
    response = client.post("/login", data={"username": "susan", "password": PASSWORD})
    assert response.headers["Location"] == "/index"
    new = stored_hash(app, user)
    assert new.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    with app.app_context():
        assert not password_hashing().needs_rehash(new)
        assert db.session.get(User, user.id).check_password(PASSWORD)
    assert app.test_client().post("/login", data={"username": "susan", "password": PASSWORD}
                       ).headers["Location"] == "/index"
    assert stored_hash(app, user) == new  # current hashes are left alone


def test_the_upgrade_never_overwrites_a_password_changed_meanwhile(app: Flask):
    user = legacy_user(app)
    with app.app_context():
        loaded = db.session.get(User, user.id)
        db.session.execute(  # as another process would: the loaded row does not see it
            db.update(User).where(User.id == user.id)
            .values(password_hash=password_hashing().hash("set by a reset meanwhile"))
            .execution_options(synchronize_session=False))
        assert loaded.password_hash.startswith("pbkdf2:")
        assert not loaded.upgrade_password_hash(PASSWORD)
        db.session.commit()
        assert db.session.get(User, user.id).check_password("set by a reset meanwhile")
