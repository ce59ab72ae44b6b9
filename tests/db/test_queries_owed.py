"""Owed rows written in one statement (bot/db/queries/owed.py), on SQLite and PostgreSQL: each
row gets the id of its own values, in the order given (a chat's messages go in id order)."""

from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import OwedMessage
from bot.db.queries.owed import insert_owed
from tests.db.rows import owed


async def test_rows_written_together_keep_their_order_and_their_own_ids(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    inserts: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OWED_MESSAGES"):
            inserts.append(statement)

    async with sessions.begin() as session:
        await insert_owed(session, [owed(7, "earlier")])
    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        rows = [owed(7, f"message {i}", urgent=i == 0) for i in range(40)]
        async with sessions.begin() as session:
            await insert_owed(session, rows)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(inserts) == 1  # one statement for the 40 rows, on both databases
    ids = [row.id for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == 40
    async with sessions() as session:
        stored = {
            row_id: (payload["text"], urgent)
            for row_id, payload, urgent in await session.execute(
                select(OwedMessage.id, OwedMessage.payload, OwedMessage.urgent)
            )
        }
    assert [stored[row.id] for row in rows] == [(f"message {i}", i == 0) for i in range(40)]
    assert min(ids) > min(stored)  # after the row written before them


async def test_nothing_to_write_writes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await insert_owed(session, [])
    async with sessions() as session:
        assert list(await session.scalars(select(OwedMessage.id))) == []
