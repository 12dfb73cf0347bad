"""Archive: data-sharing pull and schedules (#18)

Revision ID: e8a5e0000008
Revises: e7a5e0000007
Create Date: 2026-12-01 11:08:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "e8a5e0000008"
down_revision: str | None = "e7a5e0000007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
