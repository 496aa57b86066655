"""The home page and profiles."""

from __future__ import annotations

from flask import abort, render_template
from flask.typing import ResponseReturnValue
from flask_login import login_required
from sqlalchemy import select

from shared.database import db
from shared.models import User
from web.main import bp


@bp.route("/")
@bp.route("/index")
def index() -> ResponseReturnValue:
    return render_template("main/index.html", title="Home")


@bp.route("/user/<username>")
@login_required
def user(username: str) -> ResponseReturnValue:
    profile = db.session.scalar(select(User).where(User.username == username))
    if profile is None:
        abort(404)
    return render_template("main/user.html", title=profile.username, user=profile)
