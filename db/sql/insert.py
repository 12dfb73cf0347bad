"""INSERT for the dialect in use. Both engines speak ON CONFLICT (do nothing / do update), but SQLAlchemy builds it
only from the dialect's own `insert`; insert-if-absent and upserts take it from `insert_for` (the notice outbox's
hot statement is built once per dialect at import, db/repositories/notices._INSERT_ONCE)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session, target: Any) -> postgresql.Insert | sqlite.Insert:
    """`insert(target)` of PostgreSQL when the session is bound to it, else of SQLite (the two supported engines)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(target)
