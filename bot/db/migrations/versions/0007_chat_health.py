"""chat health: whether the bot can still post in the staff and on-call chats

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "chat_health",
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("problem", sa.String(length=16), nullable=True),
        sa.Column("new_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("since", bot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("announced", sa.String(length=16), nullable=True),
        sa.Column("checked_at", bot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_chat_health")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("chat_health")
