"""Trust: key ids, rotation and audit chains of configuration, sign-ins and exports (#15)

Revision ID: e4a5e0000004
Revises: e3a5e0000003
Create Date: 2026-12-01 11:04:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "e4a5e0000004"
down_revision: str | None = "e3a5e0000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
