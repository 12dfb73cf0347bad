"""Refused sign-ins counted per client address and minute (`sign_in_throttle`), shared by every API process: one
upsert per refusal, and the ended minutes taken (deleted) exactly once for their summary record."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, delete, select, tuple_
from sqlalchemy.orm import Session

from db.models import SignInThrottle
from db.sql.insert import insert_for


@dataclass(frozen=True)
class Window:
    client: str
    window: int  # minutes since the epoch
    refused: int
    suppressed: int


def count(*, session: Session, client: str, window: int, limit: int) -> Window:
    """Count one refusal of `client` in `window`; beyond `limit` in the window it is counted as suppressed."""
    t = SignInThrottle.__table__
    statement = insert_for(session, t).values(client=client, window=window, refused=1, suppressed=0 if limit >= 1 else 1)
    statement = statement.on_conflict_do_update(
        index_elements=["client", "window"],
        set_={
            "refused": t.c.refused + 1,
            "suppressed": t.c.suppressed + case((t.c.refused + 1 > limit, 1), else_=0),
        },
    ).returning(t.c.refused, t.c.suppressed)
    refused, suppressed = session.execute(statement).one()
    return Window(client, window, refused, suppressed)


def take_ended(*, session: Session, before: int) -> list[Window]:
    """Remove every window that ended before `before` and return it (each is taken by one transaction only).

    PostgreSQL: rows another transaction holds are skipped (SKIP LOCKED), never waited for — two API processes whose
    clocks straddle a minute would otherwise each wait for the other's rows; a skipped row is taken next time."""
    t = SignInThrottle.__table__
    query = select(t.c.client, t.c.window).where(t.c.window < before)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    keys = [tuple(row) for row in session.execute(query)]
    if not keys:
        return []
    rows = session.execute(
        delete(t).where(tuple_(t.c.client, t.c.window).in_(keys))
        .returning(t.c.client, t.c.window, t.c.refused, t.c.suppressed)
    )  # fmt: skip
    return sorted((Window(*row) for row in rows), key=lambda w: (w.window, w.client))
