"""Trust: operations, soak (#15)

Revision ID: e5a5e0000005
Revises: e4a5e0000004
Create Date: 2026-12-01 11:05:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "e5a5e0000005"
down_revision: str | None = "e4a5e0000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
