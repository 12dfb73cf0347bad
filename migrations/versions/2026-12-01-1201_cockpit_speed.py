"""Cockpit at volume (#14)

Revision ID: f1a5f0000001
Revises: e8a5e0000008
Create Date: 2026-12-01 12:01:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "f1a5f0000001"
down_revision: str | None = "e8a5e0000008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
