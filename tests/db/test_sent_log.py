"""The sent log at shutdown (bot/services/sent_log.py): a batch already being written when the
bot stops is finished, not cancelled half-way (rolled back and written again).

Seen once in CI: at a stop, the final write of the sent log waited SQLite's whole busy timeout
and failed ("sent_log_unwritten"), and after the restart the patient got the same four
messages again. The writer was then cancelled inside the database driver at every stop; it
no longer is. Whether that cancel caused the wait is not proven: a slow stop in a test now
writes every task's and thread's stack (tests/harness.py)."""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import OwedMessage
from bot.db.queries.owed import insert_owed
from bot.services.sent_log import SentLog
from tests.db.rows import NOW, owed


async def test_a_batch_being_written_at_shutdown_is_finished_and_frees_the_database(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = [owed(7, "first"), owed(7, "second")]
    async with sessions.begin() as session:
        await insert_owed(session, rows)
    inside = threading.Event()

    def slow_update(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE OWED_MESSAGES") and not inside.is_set():
            inside.set()
            time.sleep(0.3)  # the driver's thread (or the loop, on asyncpg) is in the UPDATE

    rollbacks: list[object] = []

    def rolled_back(connection: object) -> None:
        rollbacks.append(connection)

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", slow_update)
    event.listen(engine, "rollback", rolled_back)
    log = SentLog()
    try:
        log.note(sessions, row_id=rows[0].id, chat_id=7, message_id=11, at=NOW)
        while not inside.is_set():  # noqa: ASYNC110 - set from the driver's thread
            await asyncio.sleep(0.005)
        log.note(sessions, row_id=rows[1].id, chat_id=7, message_id=12, at=NOW)
        await log.close()
    finally:
        event.remove(engine, "before_cursor_execute", slow_update)
        event.remove(engine, "rollback", rolled_back)

    assert rollbacks == []  # the batch in flight was committed, not cancelled half-way
    assert not log.is_sent(rows[0].id) and not log.is_sent(rows[1].id)  # nothing left unwritten
    async with sessions() as session:
        stored = {
            row_id: message_id
            for row_id, message_id in await session.execute(
                select(OwedMessage.id, OwedMessage.message_id)
            )
        }
    assert stored == {rows[0].id: 11, rows[1].id: 12}
    async with asyncio.timeout(5):  # the write lock is free again
        async with sessions.begin() as session:
            await session.execute(update(OwedMessage).values(attempts=1))
