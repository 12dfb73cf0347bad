"""Treasury: returns, reconciliation, alerts (issue 5)

Revision ID: c5a5e0000005
Revises: c4a5e0000004
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "c5a5e0000005"
down_revision: str | None = "c4a5e0000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
