"""Trust: audit written with its action, case events append-only (#15)

Revision ID: f2a5f0000002
Revises: f1a5f0000001
Create Date: 2026-12-01 12:02:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "f2a5f0000002"
down_revision: str | None = "f1a5f0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
