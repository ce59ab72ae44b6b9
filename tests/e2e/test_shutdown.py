"""A bot stop finishes a database write already under way instead of cancelling it inside the
driver, where SQLAlchemy rolls it back. The case here: the polling inbox's clean-up of handled
updates, caught waiting for SQLite's write lock. The sent log's batch is in
tests/db/test_sent_log.py.

Before, the stop cancelled that DELETE: it was rolled back and the update ids it had taken
were dropped, so a handled update stayed in the inbox and the next process handled it again
(recognised as a redelivery, but work and writes for nothing)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.db.models import InboxUpdate
from bot.db.session import create_engine
from tests.harness import AnotherSQLiteWriter, BotHarness, eventually


async def _inbox_rows(harness: BotHarness) -> int:
    engine = create_engine(harness.database.url, schema=harness.database.schema)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(InboxUpdate)) or 0)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])  # another writer holds SQLite's one write lock
async def test_a_stop_while_the_inbox_clean_up_waits_for_the_database_finishes_it(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(1201)
    await harness.settle()

    async def inbox_empty() -> None:
        async with harness.ctx.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(InboxUpdate)) == 0

    await eventually(inbox_empty)
    assert harness.runtime is not None
    writer = AnotherSQLiteWriter(
        harness.runtime.engine, harness.database.url, "DELETE FROM inbox_updates"
    )
    with writer as other:
        patient.say("merci")  # handled, then removed from the inbox by the clean-up
        await other.caught()
        stopping = asyncio.ensure_future(harness.stop_bot())
        await asyncio.sleep(1.0)  # the stop reaches the clean-up while its DELETE waits
        other.release()
        await stopping

    assert other.rolled_back == []  # the DELETE under way was committed, not cancelled
    assert await _inbox_rows(harness) == 0  # the next process has nothing to handle again
