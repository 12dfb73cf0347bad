"""Enterprise portal: application materials (#13)

Revision ID: e2a5e0000002
Revises: e1a5e0000001
Create Date: 2026-12-01 11:02:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "e2a5e0000002"
down_revision: str | None = "e1a5e0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
