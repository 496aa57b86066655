"""Operator commands for the email outbox: `flask --app web.wsgi deliveries ...`.

    deliveries list [--status failed] [--email a@b] [--limit 50]
    deliveries show <id>
    deliveries retry <id>... | --all-failed
    deliveries purge --older-than-days 30 [--include-failed] [--yes]

Addresses are shown masked, as in the logs. `retry` does not publish: it puts the row
back to `queued` and due for the outbox relay, which sends it at its next sweep under the
task name of its kind.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import delete, func, select, update

from shared.clock import utcnow
from shared.database import db
from shared.db_clock import db_now
from shared.emails import mask_email, normalize_email
from shared.models import (
    FINAL_STATUSES,
    DeliveryAttempt,
    DeliveryStatus,
    EmailDelivery,
)

STATUS_NAMES = [status.value for status in DeliveryStatus]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _line(row: EmailDelivery) -> str:
    error = (row.last_error or "").replace("\n", " ")
    return (f"{row.id}  {row.kind:<16} {row.status:<10} {row.attempts:>3}  "
            f"{_when(row.created_at)}  {_when(row.updated_at)}  {mask_email(row.email):<24} "
            f"{error[:60]}")


@click.group("deliveries")
def deliveries() -> None:
    """Inspect and repair the email outbox."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(STATUS_NAMES), help="Only rows in this state.")
@click.option("--email", help="Only rows for this address.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@with_appcontext
def list_deliveries(status: str | None, email: str | None, limit: int) -> None:
    """Count rows by state, then list the newest ones."""
    counts = {status: count for status, count in db.session.execute(
        select(EmailDelivery.status, func.count()).group_by(EmailDelivery.status)
    )}
    click.echo("  ".join(f"{name}={counts.get(name, 0)}" for name in STATUS_NAMES))
    query = select(EmailDelivery).order_by(EmailDelivery.created_at.desc()).limit(limit)
    if status:
        query = query.where(EmailDelivery.status == status)
    if email:
        query = query.where(EmailDelivery.email == normalize_email(email))
    rows = db.session.scalars(query).all()
    click.echo(f"{'id':<32}  {'kind':<16} {'status':<10} {'try':>3}  {'created (UTC)':<19}  "
               f"{'updated (UTC)':<19}  {'to':<24} last error")
    for row in rows:
        click.echo(_line(row))


@deliveries.command("show")
@click.argument("delivery_id")
@with_appcontext
def show_delivery(delivery_id: str) -> None:
    """Everything about one row, with each attempt and the wait before it."""
    row = db.session.get(EmailDelivery, delivery_id)
    if row is None:
        raise click.ClickException(f"no delivery {delivery_id}")
    fields = {
        "id": row.id, "kind": row.kind, "to": mask_email(row.email), "status": row.status,
        "attempts": row.attempts, "created": _when(row.created_at),
        "updated": _when(row.updated_at), "sent": _when(row.sent_at),
        "lease until": _when(row.lease_until), "next attempt": _when(row.next_attempt_at),
        "relay after": _when(row.relay_after), "relayed": row.relays,
        "last error": row.last_error or "-",
    }
    for name, value in fields.items():
        click.echo(f"{name + ':':<14}{value}")
    attempts = db.session.scalars(
        select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == row.id)
        .order_by(DeliveryAttempt.started_at, DeliveryAttempt.id)
    ).all()
    previous = row.created_at
    for number, attempt in enumerate(attempts, start=1):
        waited = (attempt.started_at - previous).total_seconds()
        outcome = attempt.outcome or "did not finish"
        retry = ""
        if attempt.retry_at is not None and attempt.finished_at is not None:
            retry = f" next in {(attempt.retry_at - attempt.finished_at).total_seconds():.1f}s"
        click.echo(f"  attempt {number}: {_when(attempt.started_at)} (+{waited:.1f}s) "
                   f"{outcome}{retry} {attempt.error or ''} [{attempt.worker}]".rstrip())
        previous = attempt.started_at


@deliveries.command("retry")
@click.argument("delivery_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Every dead-lettered row.")
@with_appcontext
def retry_deliveries(delivery_ids: tuple[str, ...], all_failed: bool) -> None:
    """Give dead-lettered rows a fresh set of attempts; the relay sends them."""
    if not delivery_ids and not all_failed:
        raise click.UsageError("give delivery ids or --all-failed")
    now = db_now()  # the relay reads relay_after on the database's clock
    query = update(EmailDelivery).where(EmailDelivery.status == DeliveryStatus.FAILED.value)
    if not all_failed:
        query = query.where(EmailDelivery.id.in_(delivery_ids))
    result = db.session.execute(
        query.values(status=DeliveryStatus.QUEUED.value, attempts=0, next_attempt_at=None,
                     lease_until=None, relay_after=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    count = result.rowcount  # type: ignore[attr-defined]
    click.echo(f"{count} dead-lettered row(s) queued again; the relay sends them next.")
    if delivery_ids and count < len(set(delivery_ids)):
        click.echo("Only rows in state 'failed' can be retried; see `deliveries show`.", err=True)


@deliveries.command("purge")
@click.option("--older-than-days", type=click.IntRange(min=1), required=True)
@click.option("--include-failed", is_flag=True, help="Delete dead letters too.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def purge_deliveries(older_than_days: int, include_failed: bool, yes: bool) -> None:
    """Delete finished rows (and their attempts) last changed before the cutoff."""
    statuses = [status.value for status in FINAL_STATUSES
                if include_failed or status is not DeliveryStatus.FAILED]
    cutoff = utcnow() - timedelta(days=older_than_days)
    old = select(EmailDelivery.id).where(EmailDelivery.status.in_(statuses),
                                         EmailDelivery.updated_at < cutoff)
    count = db.session.scalar(select(func.count()).select_from(old.subquery())) or 0
    if count == 0:
        click.echo("Nothing to purge.")
        return
    if not yes:
        click.confirm(f"Delete {count} finished row(s) ({', '.join(statuses)}) last "
                      f"changed before {_when(cutoff)} UTC?", abort=True)
    db.session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(old)))
    db.session.execute(delete(EmailDelivery).where(EmailDelivery.id.in_(old))
                       .execution_options(synchronize_session=False))
    db.session.commit()
    click.echo(f"Purged {count} row(s).")
