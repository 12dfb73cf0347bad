"""Archive sources, imports and value history (企档)

Revision ID: d1a5e0000001
Revises: c9a5e0000009
Create Date: 2026-12-01 10:01:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "d1a5e0000001"
down_revision: str | None = "c9a5e0000009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
