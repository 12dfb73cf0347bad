"""The denylist of signed-out tokens (by `jti`), kept until each would have expired anyway."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import RevokedToken


def revoke(*, session: Session, jti: str, expires_at: int) -> None:
    """Put a token on the denylist (idempotent); expired entries are swept at the same time."""
    now = datetime.now(UTC)
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, expires_at=datetime.fromtimestamp(expires_at, UTC)))


def is_revoked(*, session: Session, jti: str) -> bool:
    return session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


def sign_in_identities(*, session: Session, limit: int = 50) -> list[tuple[str, str, str]]:
    """(kind, code, name) of the departments (kind policy or finance) and the first enterprises, for the
    development sign-in list."""
    from db.models import Department, Enterprise

    departments = session.execute(select(Department.kind, Department.code, Department.name).order_by(Department.code))
    enterprises = session.execute(select(Enterprise.uscc, Enterprise.name).order_by(Enterprise.id).limit(limit))
    return [(kind, code, name) for kind, code, name in departments] + [
        ("enterprise", uscc, name) for uscc, name in enterprises
    ]
