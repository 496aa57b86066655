"""The home page and profiles."""

from __future__ import annotations

from flask import abort, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import select

from shared.database import db
from shared.models import User
from web.login_sessions import current_login_id, sign_ins_of
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
    own = profile.id == current_user.id
    return render_template("main/user.html", title=profile.username, user=profile, own=own,
                           sign_ins=sign_ins_of(profile) if own else [],
                           this_sign_in=current_login_id())
