"""owed messages: what the bot owes a patient, written with the answer that caused it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNSENT = sa.text("sent_at IS NULL AND dropped_at IS NULL")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "owed_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("created_at", bot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_at", bot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", bot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", bot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("dropped_at", bot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("drop_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episodes.id"], name=op.f("fk_owed_messages_episode_id_episodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owed_messages")),
    )
    op.create_index(
        "ix_owed_messages_unsent",
        "owed_messages",
        ["chat_id", "id"],
        sqlite_where=UNSENT,
        postgresql_where=UNSENT,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_owed_messages_unsent", table_name="owed_messages")
    op.drop_table("owed_messages")
