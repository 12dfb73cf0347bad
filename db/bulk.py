"""Set-based writes shared by the repositories' `*_many` functions: chunked IN lists and DBAPI executemany inserts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

CHUNK = 5000  # ids per IN list: far below SQLite's 32,766 variables; also rows per executemany

# Called between chunks of a long bulk write, so a batch activity can heartbeat while the database works.
Beat = Callable[[], object]


def no_beat() -> None:
    """The default Beat: nobody is listening."""


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """`values` in slices of at most `size`."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


def is_postgres(session: Session) -> bool:
    """True on PostgreSQL (the other engine is SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def among(session: Session, column: Any, values: Sequence[int] | Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` with the values in ONE bound parameter: a JSON array read by json_each on SQLite, an array
    compared with = ANY on PostgreSQL. `column.in_(values)` renders one parameter per value at every execution, which
    cost more than the statement itself at thousands of ids; this also has no limit on the number of values. The
    values are all integers or all strings."""
    kind = String() if values and isinstance(values[0], str) else Integer()
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(kind)))
    listed = select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(list(values)), String())))
    return column.in_(listed.scalar_subquery())


def sqlite_moment(value: Any) -> Any:
    """A moment as SQLite stores DateTime columns (UTC text), so bulk rows read back like ORM rows."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class Encoded(str):
    """A JSON column's value already encoded as JSON text (stored as it is)."""


def _json_text(value: Any) -> Any:
    if value is None or type(value) is Encoded:
        return value
    return json.dumps(value, ensure_ascii=False)


def moments() -> Callable[[Any], Any]:
    """`sqlite_moment` remembering its answers: the rows of a batch mostly share one or two moments."""
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        if value is None:
            return None
        hit = seen.get(value)
        if hit is None:
            hit = seen[value] = sqlite_moment(value)
            if len(seen) > 1024:
                seen.clear()
        return hit

    return convert


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    ignore_duplicates: bool = False,
    beat: Beat = no_beat,
) -> None:
    """INSERT many rows: multi-row INSERTs on SQLite, the DBAPI's executemany on PostgreSQL.

    The ORM's per-row parameter processing is most of the cost at a hundred thousand rows, so values are converted
    here as SQLAlchemy would store them (JSON as text on SQLite and JSONB on PostgreSQL, moments as SQLite's UTC
    text). Every NOT NULL column without a server default must be given; a column missing from a row is NULL.
    `ignore_duplicates`: rows that hit a unique key are skipped (ON CONFLICT DO NOTHING, on both engines). The rows
    go in CHUNK at a time with a `beat()` after each.
    """
    if not rows:
        return
    pg = is_postgres(session)
    columns = list(dict.fromkeys(name for row in rows for name in row))
    converted: list[tuple[int, Callable[[Any], Any]]] = []
    marks = []
    for index, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, JSON) or isinstance(getattr(kind, "impl", None), JSON):
            converted.append((index, _json_text))
            marks.append("%s::jsonb" if pg else "?")
        elif (isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime)) and not pg:
            converted.append((index, moments()))
            marks.append("?")
        else:
            marks.append("%s" if pg else "?")
    names = ", ".join(f'"{c}"' for c in columns)
    head = f'INSERT INTO "{table.name}" ({names}) VALUES '
    row_marks = f"({', '.join(marks)})"
    tail = " ON CONFLICT DO NOTHING" if ignore_duplicates else ""
    connection = session.connection()
    # Rows that all name every column (the usual case: one dict literal per row) are read by one itemgetter, in C;
    # a row missing a column (NULL) takes the per-column path.
    getter = itemgetter(*columns)
    whole = all(len(r) == len(columns) for r in rows)
    for chunk in chunks(rows):
        if whole and not converted:
            params: list[Any] = [getter(r) for r in chunk] if len(columns) > 1 else [(getter(r),) for r in chunk]
        else:
            if whole and len(columns) > 1:
                params = [list(getter(r)) for r in chunk]
            else:
                params = [[r.get(c) for c in columns] for r in chunk]  # lists, converted in place
            # Only the JSON and moment columns are converted: this loop is per row and column.
            for index, convert in converted:
                for values in params:
                    values[index] = convert(values[index])
        if pg:
            connection.exec_driver_sql(head + row_marks + tail, [tuple(values) for values in params])
        else:
            _insert_sqlite(connection, head, row_marks, tail, params, len(columns))
        beat()


# Rows per multi-row INSERT on SQLite (and at most this many parameters in one statement: SQLite allows 32,766).
SQLITE_ROWS = 500
SQLITE_PARAMETERS = 30_000


def _insert_sqlite(connection: Any, head: str, row_marks: str, tail: str, params: list[Any], width: int) -> None:
    """The rows as multi-row INSERTs (VALUES (…), (…), …): SQLite starts its program, and every trigger's, once per
    statement and not once per row as an executemany does, which was a third of a row's cost on the tables the
    cockpit's triggers watch (tests/db/test_bulk_insert.py holds the two forms equal)."""
    per = max(1, min(SQLITE_ROWS, SQLITE_PARAMETERS // max(width, 1)))
    full = head + ", ".join([row_marks] * per) + tail
    for start in range(0, len(params), per):
        part = params[start : start + per]
        sql = full if len(part) == per else head + ", ".join([row_marks] * len(part)) + tail
        connection.exec_driver_sql(sql, tuple(chain.from_iterable(part)))
