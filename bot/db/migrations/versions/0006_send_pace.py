"""send pace: Telegram's message budgets shared by every bot process of one PostgreSQL database

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "send_pace",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_slot", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_send_pace")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("send_pace")
