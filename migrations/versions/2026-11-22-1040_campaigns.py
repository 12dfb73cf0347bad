"""No-application campaigns (issue 7)

Revision ID: c7a5e0000007
Revises: c6a5e0000006
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "c7a5e0000007"
down_revision: str | None = "c6a5e0000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
