"""Owed messages written in one statement.

The ORM writes several new rows of a table in one INSERT only when the database can say which
generated id belongs to which row: PostgreSQL can, SQLite cannot (its RETURNING order is not
defined), so a reply that owes two messages cost two INSERTs there. SQLite gives the rows of
one INSERT ascending ids in the order of its VALUES (each new rowid is the largest one plus
one, under the write lock): one multi-row INSERT, its ids sorted, says which is which.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import OwedMessage
from bot.db.queries._locking import on_postgres

_COLUMNS = tuple(c.key for c in OwedMessage.__table__.columns if c.key != "id")
#: Rows per INSERT: well under SQLite's oldest limit of 999 parameters.
_CHUNK = 999 // len(_COLUMNS)


async def insert_owed(session: AsyncSession, rows: Sequence[OwedMessage]) -> None:
    """Write ``rows`` (new, not in the session) in one statement and give each its id. On
    SQLite they stay out of the session: what they hold is read through them, never changed."""
    if not rows:
        return
    if on_postgres(session) or len(rows) == 1:
        session.add_all(rows)
        await session.flush()
        return
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        values = [{key: getattr(row, key) for key in _COLUMNS} for row in chunk]
        written = insert(OwedMessage).values(values).returning(OwedMessage.id)
        for row, row_id in zip(chunk, sorted(await session.scalars(written)), strict=True):
            row.id = row_id
