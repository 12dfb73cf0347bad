"""Trust: API response schemas and logs (#15)

Revision ID: f5a5f0000005
Revises: f4a5f0000004
Create Date: 2026-12-01 12:05:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "f5a5f0000005"
down_revision: str | None = "f4a5f0000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
