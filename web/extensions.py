"""Extension objects of the web tier, created here and bound in `create_app`."""

from __future__ import annotations

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from shared.database import db
from shared.models import User

csrf = CSRFProtect()
migrate = Migrate()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to access this page."

MAX_ID = 2**31 - 1


def parse_session_id(value: str) -> tuple[int, int] | None:
    """`"<user id>:<session version>"` as `User.get_id` writes it, or None if malformed."""
    user_id, sep, version = value.partition(":")
    if not sep or not (user_id.isascii() and user_id.isdigit()):
        return None
    if not (version.isascii() and version.isdigit()):
        return None
    if not (0 < int(user_id) <= MAX_ID and int(version) <= MAX_ID):
        return None
    return int(user_id), int(version)


def register_user_loader() -> None:
    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        """Sessions and remember-me cookies from before the last reset load nobody."""
        parsed = parse_session_id(session_id)
        if parsed is None:
            return None
        user_id, version = parsed
        user = db.session.get(User, user_id)
        if user is None or not user.is_active or user.session_version != version:
            return None
        return user
