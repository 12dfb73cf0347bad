"""Speed: instant hot path (#16)

Revision ID: f3a5f0000003
Revises: f2a5f0000002
Create Date: 2026-12-01 12:03:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "f3a5f0000003"
down_revision: str | None = "f2a5f0000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
