"""Update ids Telegram delivered: each update is handled once, even when delivered again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import ProcessedUpdate


async def already_processed(session: AsyncSession, *, update_id: int, now: datetime) -> bool:
    """True when ``update_id`` was recorded before; otherwise it is recorded now (flushed, so
    a concurrent delivery of the same update fails on the primary key)."""
    if await session.get(ProcessedUpdate, update_id) is not None:
        return True
    session.add(ProcessedUpdate(update_id=update_id, processed_at=now))
    await session.flush()
    return False
