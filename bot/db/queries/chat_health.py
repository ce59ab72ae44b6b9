"""The ``chat_health`` rows: one per team chat role, changed only by conditional UPDATEs, so
of several processes that see the same change one makes it (and tells the other chat once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.db.models import ChatHealth
from bot.db.queries._locking import on_postgres


async def chat_states(session: AsyncSession) -> dict[str, ChatHealth]:
    """Every role's row, by role (a role never seen has none: the bot is assumed to post)."""
    rows = await session.scalars(select(ChatHealth))
    return {row.role: row for row in rows}


async def ensure_row(session: AsyncSession, *, role: str, chat_id: int, now: datetime) -> None:
    """The role's row for ``chat_id``: created if missing; reset (reachable, nothing to tell)
    when the role now names another chat, e.g. STAFF_CHAT_ID set to a migrated group's id."""
    insert = postgresql.insert if on_postgres(session) else sqlite.insert
    await session.execute(
        insert(ChatHealth)
        .values(role=role, chat_id=chat_id, problem=None, since=now, announced=None)
        .on_conflict_do_nothing(index_elements=[ChatHealth.role])
    )
    await session.execute(
        update(ChatHealth)
        .where(ChatHealth.role == role, ChatHealth.chat_id != chat_id)
        .values(
            chat_id=chat_id,
            problem=None,
            new_chat_id=None,
            since=now,
            announced=None,
            checked_at=None,
        )
    )


async def mark_lost(
    session: AsyncSession,
    *,
    role: str,
    chat_id: int,
    problem: str,
    new_chat_id: int | None,
    now: datetime,
) -> bool:
    """Record that the bot cannot post in the role's chat; True when this call found it
    reachable (the transition: whoever makes it logs it)."""
    changed = await _update(
        session,
        update(ChatHealth)
        .where(_row(role, chat_id), ChatHealth.problem.is_(None))
        .values(problem=problem, new_chat_id=new_chat_id, since=now),
    )
    if not changed:
        await session.execute(
            update(ChatHealth)
            .where(_row(role, chat_id))
            .values(problem=problem, new_chat_id=new_chat_id)
        )
    return changed


async def mark_reachable(session: AsyncSession, *, role: str, chat_id: int, now: datetime) -> bool:
    """Record that the bot can post there again; True when this call found it lost."""
    return await _update(
        session,
        update(ChatHealth)
        .where(_row(role, chat_id), ChatHealth.problem.is_not(None))
        .values(problem=None, new_chat_id=None, since=now),
    )


async def claim_announcement(
    session: AsyncSession, *, role: str, chat_id: int, was: str | None, now_told: str | None
) -> bool:
    """Move ``announced`` from ``was`` to ``now_told``: True for the one caller that may send
    the notice (a failed send gives it back with the reverse move)."""
    return await _update(
        session,
        update(ChatHealth)
        .where(_row(role, chat_id), _is(ChatHealth.announced, was))
        .values(announced=now_told),
    )


async def claim_check(
    session: AsyncSession,
    *,
    role: str,
    chat_id: int,
    last_checked: datetime | None,
    now: datetime,
) -> bool:
    """Take the periodic check of a chat: True for the one caller that asks Telegram."""
    return await _update(
        session,
        update(ChatHealth)
        .where(_row(role, chat_id), _is(ChatHealth.checked_at, last_checked))
        .values(checked_at=now),
    )


def _row(role: str, chat_id: int) -> ColumnElement[bool]:
    return (ChatHealth.role == role) & (ChatHealth.chat_id == chat_id)


def _is(column: InstrumentedAttribute[Any], value: object) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


async def _update(session: AsyncSession, statement: object) -> bool:
    result = await session.execute(statement)  # type: ignore[call-overload]
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)
