"""Chinese practice: indicator draw-down and voucher channel (#17)

Revision ID: e7a5e0000007
Revises: e6a5e0000006
Create Date: 2026-12-01 11:07:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "e7a5e0000007"
down_revision: str | None = "e6a5e0000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
