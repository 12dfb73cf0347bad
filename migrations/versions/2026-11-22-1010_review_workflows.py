"""Review workflows: tasks, objections, deadlines (issue 4)

Revision ID: c4a5e0000004
Revises: 5b1e0c7d9a23
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "c4a5e0000004"
down_revision: str | None = "5b1e0c7d9a23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
