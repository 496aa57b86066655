"""The database's clock, as a SQL expression: one "now" for every process that shares the rows.

Web and worker hosts may disagree about the time; the database they share is the one clock
that decides whether a row is due, how long it has waited, who holds a lease and when it
ends. `db_now(offset)` is that clock in a statement, `offset` seconds ahead (a number or a
bound parameter; a NULL offset gives NULL), typed like the columns it is compared with, so
selecting it returns an aware UTC datetime.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from shared.models import UTCDateTime


class db_now(FunctionElement[Any]):  # noqa: N801 - reads as the SQL function it is
    """The current time on the database server (UTC) plus `offset` seconds."""

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, offset: float | ColumnElement[Any] = 0.0) -> None:
        if not isinstance(offset, ColumnElement):
            offset = literal(float(offset), Float)
        super().__init__(offset)


def _offset(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    [offset] = element.clauses.clauses
    return compiler.process(offset, **kw)


@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # The text SQLAlchemy stores for a DateTime on SQLite ("YYYY-MM-DD HH:MM:SS.ffffff",
    # UTC), so comparisons with columns are comparisons of like strings. %f is "SS.SSS".
    return (f"(strftime('%Y-%m-%d %H:%M:%f', 'now', ({_offset(element, compiler, **kw)})"
            " || ' seconds') || '000')")


@compiles(db_now, "postgresql")
def _postgresql_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # statement_timestamp(): one value per statement (stable, so indexes can use it), and
    # unlike now() not the start of a transaction that may have begun long before.
    return ("(statement_timestamp() + make_interval(secs => "
            f"CAST({_offset(element, compiler, **kw)} AS double precision)))")


@compiles(db_now)
def _default_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return ("(CURRENT_TIMESTAMP + "
            f"CAST({_offset(element, compiler, **kw)} AS double precision) * INTERVAL '1' SECOND)")
