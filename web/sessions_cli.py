"""Operator commands for sign-ins: `flask --app web.wsgi sessions ...`.

    sessions purge            delete the rows of sign-ins that expired or were ended
    sessions end <username>   sign an account out on every device (as its own button does)

`purge` is safe to run at any time (from cron, say): it deletes only rows that no longer
sign anybody in. Each sign-in also tidies its own account's expired rows.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from shared.database import db
from shared.models import User
from web.login_sessions import end_every_sign_in, purge_ended_sign_ins


@click.group("sessions")
def sessions() -> None:
    """End sign-ins and tidy their records."""


@sessions.command("purge")
@with_appcontext
def purge_sessions() -> None:
    """Delete the records of sign-ins that expired or were ended."""
    click.echo(f"Purged {purge_ended_sign_ins()} ended sign-in(s).")


@sessions.command("end")
@click.argument("username")
@with_appcontext
def end_sessions(username: str) -> None:
    """Sign USERNAME out on every device: every session and remember-me cookie dies."""
    user_id = db.session.scalar(select(User.id).where(User.username == username))
    if user_id is None:
        raise click.ClickException("No account has that username.")
    end_every_sign_in(user_id)
    click.echo("Every sign-in of that account has ended.")
