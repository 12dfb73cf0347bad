"""Who is calling: the role and subject of a verified token (USCC for enterprises, department code for staff)."""

from __future__ import annotations

from pydantic import BaseModel

from schemas.vocabulary import ActorKind, Role, actor


class Principal(BaseModel):
    role: Role
    subject: str
    name: str = ""
    # The token's `jti`, expiry and issue (seconds since the epoch): what logout puts on the denylist, and what the
    # record of the token's first use names.
    token_id: str = ""
    expires_at: int = 0
    issued_at: int = 0

    @property
    def actor(self) -> str:
        """The stored actor of what this caller does: `department:YC-JXJ`, with the officer's name when known."""
        return actor(ActorKind(self.role.value), self.subject, self.name)
