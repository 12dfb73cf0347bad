"""Local calendar days and months of stored UTC moments, cut in SQL on both engines (the cockpit's live queries
and its summaries must cut them the same way)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Date, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from schemas.localtime import LOCAL_TZ

# Beijing has kept one offset since 1991; days and months are cut by shifting the stored UTC moment.
OFFSET_HOURS = int(datetime(2026, 1, 1, tzinfo=LOCAL_TZ).utcoffset().total_seconds() // 3600)  # type: ignore[union-attr]


class local_month(FunctionElement):
    """The local calendar month (YYYY-MM) of a stored UTC moment."""

    type = String()
    inherit_cache = True


@compiles(local_month, "sqlite")
def _local_month_sqlite(element, compiler, **kw) -> str:
    (moment,) = list(element.clauses)
    return f"strftime('%Y-%m', {compiler.process(moment, **kw)}, '{OFFSET_HOURS:+d} hours')"


@compiles(local_month, "postgresql")
def _local_month_postgresql(element, compiler, **kw) -> str:
    (moment,) = list(element.clauses)
    return f"to_char({compiler.process(moment, **kw)} + interval '{OFFSET_HOURS} hours', 'YYYY-MM')"


class local_day(FunctionElement):
    """The local calendar day of a stored UTC moment (the day the triggers' working days are counted on)."""

    type = Date()
    inherit_cache = True


@compiles(local_day, "sqlite")
def _local_day_sqlite(element, compiler, **kw) -> str:
    (moment,) = list(element.clauses)
    return f"date({compiler.process(moment, **kw)}, '{OFFSET_HOURS:+d} hours')"


@compiles(local_day, "postgresql")
def _local_day_postgresql(element, compiler, **kw) -> str:
    (moment,) = list(element.clauses)
    return f"(({compiler.process(moment, **kw)} AT TIME ZONE 'UTC') + interval '{OFFSET_HOURS} hours')::date"
