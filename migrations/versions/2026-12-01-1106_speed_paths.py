"""Speed: instant and campaign hot paths (#16)

Revision ID: e6a5e0000006
Revises: e5a5e0000005
Create Date: 2026-12-01 11:06:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "e6a5e0000006"
down_revision: str | None = "e5a5e0000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
