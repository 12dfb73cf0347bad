"""Department workbench: eligibility at application (#12)

Revision ID: e1a5e0000001
Revises: d7a5e0000007
Create Date: 2026-12-01 11:01:00

Reserved in a fixed chain so work on several parts of the tree can land in any order; it changes nothing until the
work it is named for fills it in.
"""

from collections.abc import Sequence

revision: str = "e1a5e0000001"
down_revision: str | None = "d7a5e0000007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
