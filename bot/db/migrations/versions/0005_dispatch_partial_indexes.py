"""dispatch partial indexes: a tick's claim, expiry and stale-claim queries read only due rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: name -> (columns, the rows kept); the same predicates as bot/db/models.py's CheckIn.
INDEXES = {
    "ix_checkins_due": (["due_at"], "status = 'scheduled'"),
    "ix_checkins_open_window": (["window_ends_at"], "status IN ('awaiting', 'scheduled')"),
    "ix_checkins_held_claims": (
        ["claimed_by", "claimed_at"],
        "status = 'sending' OR (status = 'awaiting' AND sent_at IS NULL"
        " AND question_index = 0 AND reask_count = 0)",
    ),
}


def upgrade() -> None:
    """Apply this revision."""
    for name, (columns, where) in INDEXES.items():
        op.create_index(
            name,
            "checkins",
            columns,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    """Revert this revision."""
    for name in INDEXES:
        op.drop_index(name, table_name="checkins")
