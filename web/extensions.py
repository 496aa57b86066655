"""Extension objects of the web tier, created here and bound in `create_app`."""

from __future__ import annotations

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from web.login_sessions import load_user

csrf = CSRFProtect()
migrate = Migrate()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to access this page."


def register_user_loader() -> None:
    """Sessions and remember-me cookies hold a sign-in's token: see web/login_sessions.py."""
    login_manager.user_loader(load_user)
