"""Readiness: whether the application database answers (the API's /readyz asks)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.repositories import lookups


def ping_database(*, session: Session) -> None:
    """Raises when the database does not answer a trivial query."""
    lookups.ping(session=session)
