"""SMS: policy pushes and opt-out (issue 6)

Revision ID: c6a5e0000006
Revises: c5a5e0000005
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "c6a5e0000006"
down_revision: str | None = "c5a5e0000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
