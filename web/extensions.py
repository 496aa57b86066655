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


def register_user_loader() -> None:
    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        if not user_id.isdigit():
            return None
        return db.session.get(User, int(user_id))
