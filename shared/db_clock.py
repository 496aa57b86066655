"""The database's clock, as a SQL expression: one "now" for every process that shares the rows.

Web and worker hosts may disagree about the time; the database they share is the one clock
that decides whether a row is due, how long it has waited, and when a sweep last ran.
`db_now()` is that clock in a statement (`CURRENT_TIMESTAMP` on PostgreSQL, `'now'` on
SQLite), typed like the columns it is compared with, so selecting it returns an aware
UTC datetime.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from shared.models import UTCDateTime


class db_now(FunctionElement[Any]):  # noqa: N801 - reads as the SQL function it is
    """The current time on the database server (UTC), for use inside a statement."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(db_now)
def _default_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # The text SQLAlchemy stores for a DateTime on SQLite ("YYYY-MM-DD HH:MM:SS.ffffff"),
    # so comparisons with columns are comparisons of like strings. %f is "SS.SSS".
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
