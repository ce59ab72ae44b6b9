"""The ``inbox_updates`` rows: updates fetched by polling and kept until handled."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import InboxUpdate
from bot.db.queries._locking import on_postgres


async def keep(
    session: AsyncSession, *, bot_id: int, updates: Iterable[tuple[int, str]], now: datetime
) -> None:
    """Store ``(update_id, raw JSON)`` pairs in one statement; one already kept stays as it is
    (a batch fetched again after a crash)."""
    rows = [
        {"bot_id": bot_id, "update_id": update_id, "raw": raw, "received_at": now}
        for update_id, raw in updates
    ]
    if not rows:
        return
    insert = postgresql.insert if on_postgres(session) else sqlite.insert
    # executemany: SQLAlchemy sends it as one multi-row INSERT ("insertmanyvalues"), from a
    # statement compiled once, not one compiled for every batch's rows.
    await session.execute(insert(InboxUpdate).on_conflict_do_nothing(), rows)


async def waiting(session: AsyncSession, *, bot_id: int) -> list[tuple[int, str]]:
    """Every update kept and not yet handled, oldest first: ``(update_id, raw JSON)``."""
    rows = await session.execute(
        select(InboxUpdate.update_id, InboxUpdate.raw)
        .where(InboxUpdate.bot_id == bot_id)
        .order_by(InboxUpdate.update_id)
    )
    return [(update_id, raw) for update_id, raw in rows]


async def forget(session: AsyncSession, *, bot_id: int, update_ids: Iterable[int]) -> None:
    """Remove handled updates (one statement)."""
    ids = list(update_ids)
    if ids:
        await session.execute(
            delete(InboxUpdate).where(InboxUpdate.bot_id == bot_id, InboxUpdate.update_id.in_(ids))
        )
