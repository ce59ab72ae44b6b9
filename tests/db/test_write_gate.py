"""SQLite's one writer handed over in order, urgent work first (bot/db/write_gate.py): taken at
a transaction's first write, given back however the transaction or its connection ends, and
never waited for longer than its advisory limit. Orders are asserted, never durations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.models import ProcessedUpdate
from bot.db.priority import urgent_work
from bot.db.session import create_engine, make_sessionmaker, upgrade_database
from bot.db.write_gate import WriteGate, write_gate_of, writes
from bot.metrics import SQLITE_WRITE_GATE_BYPASSED


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT episodes.id FROM episodes WHERE episodes.chat_id = ?", False),
        ("  select 1", False),
        ("EXPLAIN QUERY PLAN SELECT 1", False),
        ("WITH due AS (SELECT id FROM alerts) SELECT id FROM due", False),
        ("BEGIN", False),
        ("COMMIT", False),
        ("SAVEPOINT sa_savepoint_1", False),
        ("INSERT INTO answers (episode_id) VALUES (?)", True),
        ("UPDATE checkins SET question_index=? WHERE checkins.id = ?", True),
        ("DELETE FROM inbox_updates WHERE update_id IN (?)", True),
        ("REPLACE INTO facts VALUES (?, ?)", True),
        # A claim: a CTE, then the UPDATE (the kind of write an earlier gate did not see).
        ("WITH due AS (SELECT id FROM alerts LIMIT 5) UPDATE alerts SET x=1 WHERE id IN due", True),
        ("/* a comment */ INSERT INTO answers VALUES (1)", True),
        ("-- a comment\nDELETE FROM answers", True),
        ("CREATE TABLE _alembic_tmp_answers (id INTEGER)", True),
        ("PRAGMA foreign_keys=OFF", True),
        ("VACUUM", True),
    ],
)
def test_what_counts_as_a_write(statement: str, expected: bool) -> None:
    assert writes(statement) is expected


async def _writer(
    sessions: async_sessionmaker[AsyncSession],
    update_id: int,
    done: list[int],
    *,
    urgent: bool = False,
) -> None:
    with urgent_work(urgent):
        async with sessions.begin() as session:
            session.add(ProcessedUpdate(update_id=update_id, processed_at=datetime.now(UTC)))
            await session.flush()
            done.append(update_id)


def _gate(engine: AsyncEngine) -> WriteGate:
    gate = write_gate_of(engine.sync_engine)
    assert gate is not None
    return gate


async def _until_waiting(engine: AsyncEngine, count: int) -> None:
    gate = _gate(engine)
    async with asyncio.timeout(5):
        while gate.waiting < count:  # noqa: ASYNC110 - counted by the gate itself
            await asyncio.sleep(0.01)


async def _engine(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    await upgrade_database(engine)
    return engine


async def test_sqlite_writers_queue_and_an_urgent_one_goes_first(tmp_path: Path) -> None:
    engine = await _engine(tmp_path)
    sessions = make_sessionmaker(engine)
    done: list[int] = []
    try:
        async with sessions.begin() as holder:  # holds the one writer
            holder.add(ProcessedUpdate(update_id=1, processed_at=datetime.now(UTC)))
            await holder.flush()
            ordinary = [asyncio.create_task(_writer(sessions, 10 + i, done)) for i in range(3)]
            await _until_waiting(engine, 3)  # at the gate, not in SQLite's busy handler
            urgent = asyncio.create_task(_writer(sessions, 99, done, urgent=True))
            await _until_waiting(engine, 4)
            assert done == []
        await asyncio.gather(*ordinary, urgent)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ProcessedUpdate)) == 5
    finally:
        await engine.dispose()
    # The urgent writer first; the ordinary ones in the order they reached the gate.
    assert done[0] == 99 and sorted(done[1:]) == [10, 11, 12]


async def test_a_rolled_back_writer_gives_the_gate_back(tmp_path: Path) -> None:
    engine = await _engine(tmp_path)
    sessions = make_sessionmaker(engine)
    done: list[int] = []
    try:
        async with sessions() as session:
            session.add(ProcessedUpdate(update_id=1, processed_at=datetime.now(UTC)))
            await session.flush()
            await session.rollback()
        assert _gate(engine).waiting == 0
        await asyncio.wait_for(_writer(sessions, 2, done), 1)  # no wait for a gate held
    finally:
        await engine.dispose()
    assert done == [2]


async def test_a_gate_never_given_back_delays_a_writer_and_never_hangs_it(
    tmp_path: Path,
) -> None:
    """The gate is advisory: a hidden wait (a holder that needs what waits behind it) must
    cost a writer :data:`~bot.db.write_gate.ADVISORY_WAIT`, never hang it as a hard gate did."""
    engine = await _engine(tmp_path)
    sessions = make_sessionmaker(engine)
    gate = _gate(engine)
    gate.wait = 0.2
    done: list[int] = []
    bypassed = SQLITE_WRITE_GATE_BYPASSED._value.get()
    try:
        await gate._gate.acquire()  # taken and never given back (no SQLite lock behind it)
        await asyncio.wait_for(_writer(sessions, 3, done), 10)
    finally:
        await engine.dispose()
    assert done == [3]  # written, through SQLite's own locking
    assert SQLITE_WRITE_GATE_BYPASSED._value.get() == bypassed + 1


async def test_postgresql_has_no_write_gate() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        assert write_gate_of(engine.sync_engine) is None
    finally:
        await engine.dispose()


async def test_an_autocommit_statement_takes_no_gate(tmp_path: Path) -> None:
    """Each statement is its own transaction there: no commit would give the gate back."""
    engine = await _engine(tmp_path)
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(
                ProcessedUpdate.__table__.insert().values(
                    update_id=5, processed_at=datetime.now(UTC)
                )
            )
            assert _gate(engine).waiting == 0
            async with asyncio.timeout(1):  # another writer is not kept waiting
                await _writer(make_sessionmaker(engine), 6, [])
    finally:
        await engine.dispose()
