"""What several bot processes on one PostgreSQL share: the polling lease (one poller per token)
and Telegram's message budgets (``send_pace``). Each connection or engine here stands for one
process; the three-process test (tests/multiprocess/test_several_workers.py) runs the real
thing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.db.lease import PollingLease
from bot.db.queries.pace import hold_back, reserve_slots
from bot.db.session import create_engine, upgrade_database
from bot.telegram.pace import SharedPace
from tests.harness import TestDatabase

BOT = "123456"
#: The backend holding this schema's polling lease (the key as bot/db/lease.py derives it).
_LEASE_HOLDER = text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND ((classid::bigint << 32) | objid::bigint) = "
    "hashtextextended('cryo-followup:polling:' || current_schema() || ':' || :bot, 0)"
)


@pytest.fixture
async def engine(database: TestDatabase) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on the test database."""
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade_database(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def postgres_engine(postgres_database: TestDatabase) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on a fresh PostgreSQL schema (skipped without TEST_DATABASE_URL)."""
    engine = create_engine(postgres_database.url, schema=postgres_database.schema)
    try:
        await upgrade_database(engine)
        yield engine
    finally:
        await engine.dispose()


async def _autocommit(engine: AsyncEngine) -> AsyncConnection:
    connection = await engine.connect()
    await connection.execution_options(isolation_level="AUTOCOMMIT")
    return connection


async def test_polling_lease_is_held_by_one_process_at_a_time(engine: AsyncEngine) -> None:
    """On PostgreSQL the second process waits for the first to let go; on SQLite (one
    process by construction) the lease is simply taken."""
    first, second = PollingLease(engine, bot_id=BOT), PollingLease(engine, bot_id=BOT)
    try:
        assert await first.try_take()
        if engine.dialect.name != "postgresql":
            assert await second.try_take()
            return
        assert not await second.try_take()
        assert not await second.try_take()  # asking again changes nothing
        assert await first.still_held()
        other_bot = PollingLease(engine, bot_id="654321")
        assert await other_bot.try_take()  # another bot's lease is another lock
        await other_bot.release()

        await first.release()
        assert await second.try_take()
        assert not await first.try_take()
    finally:
        await first.release()
        await second.release()


async def test_a_lease_whose_connection_dies_is_lost_and_taken_over(
    postgres_engine: AsyncEngine,
) -> None:
    """A SIGKILLed leader's connection closes: the lock goes with it, a follower takes it at its
    next try, and the old holder, if it still runs, learns it lost it."""
    leader, follower = (
        PollingLease(postgres_engine, bot_id=BOT),
        PollingLease(postgres_engine, bot_id=BOT),
    )
    admin = await _autocommit(postgres_engine)
    try:
        assert await leader.try_take()
        holder = await admin.scalar(_LEASE_HOLDER, {"bot": BOT})
        assert holder is not None
        assert not await follower.try_take()
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})

        async with asyncio.timeout(10):
            while not await follower.try_take():  # noqa: ASYNC110 - the backend exits asynchronously
                await asyncio.sleep(0.05)
        assert not await leader.still_held()
        assert not await leader.try_take()  # a new connection, and the follower has it now
    finally:
        await leader.release()
        await follower.release()
        await admin.close()


async def test_reserved_slots_follow_each_other_whichever_process_reserves(
    postgres_engine: AsyncEngine,
) -> None:
    """Two processes' batches never share a slot: the second batch starts where the first ends
    (slots of 10 s here, so the milliseconds between the calls do not matter)."""
    one, two = await _autocommit(postgres_engine), await _autocommit(postgres_engine)
    try:
        first = await reserve_slots(one, name="global", count=3, interval=10.0)
        second = await reserve_slots(two, name="global", count=2, interval=10.0)
        third = await reserve_slots(one, name="global", count=1, interval=10.0)
    finally:
        await one.close()
        await two.close()
    assert first == pytest.approx([0.0, 10.0, 20.0], abs=1e-3)
    assert 29.0 < second[0] <= 30.001 and second[1] == pytest.approx(second[0] + 10.0)
    assert 49.0 < third[0] <= 50.001


async def test_a_group_budget_allows_its_burst_then_one_message_every_three_seconds(
    postgres_engine: AsyncEngine,
) -> None:
    """Telegram's 20 a minute per group: 20 at once from an idle budget, then one every 3 s,
    counted for every process; a 429 naming no chat holds every process back."""
    connection = await _autocommit(postgres_engine)
    try:
        waits = [
            (
                await reserve_slots(
                    connection, name="chat:-100", count=1, interval=3.0, tolerance=57
                )
            )[0]
            for _ in range(21)
        ]
        await hold_back(connection, name="global", seconds=5.0)
        after_pause = await reserve_slots(connection, name="global", count=1, interval=0.1)
    finally:
        await connection.close()
    assert waits[:20] == pytest.approx([0.0] * 20, abs=1e-3)
    assert 2.0 < waits[20] <= 3.001
    assert 4.0 < after_pause[0] <= 5.001


async def test_shared_pace_reserves_a_batch_for_the_messages_waiting(
    postgres_engine: AsyncEngine,
) -> None:
    """Thirty messages waiting at once cost a few round trips to the database, not thirty."""
    pace = SharedPace(postgres_engine, rate=100, group_rate=1 / 3, group_burst=20)
    try:
        await asyncio.gather(*(pace.turn() for _ in range(30)))
    finally:
        await pace.close()
    assert 1 <= pace.reservations <= 3
