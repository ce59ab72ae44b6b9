"""SQLite's one writer handed over in order, urgent work first (bot/db/write_gate.py): taken at
a transaction's first write, given back however the transaction or its connection ends.

Orders are asserted, never durations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db import write_gate
from bot.db.models import ProcessedUpdate
from bot.db.priority import urgent_work
from bot.db.session import create_engine, make_sessionmaker, upgrade_database
from bot.db.write_gate import WriteGate, write_gate_of


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
    for _ in range(500):
        if gate.waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{gate.waiting} writers wait at the gate, expected {count}")


async def test_sqlite_writers_queue_and_an_urgent_one_goes_first(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    done: list[int] = []
    try:
        async with sessions.begin() as holder:  # holds the one writer
            holder.add(ProcessedUpdate(update_id=1, processed_at=datetime.now(UTC)))
            await holder.flush()
            ordinary = [asyncio.create_task(_writer(sessions, 10 + i, done)) for i in range(3)]
            await _until_waiting(engine, 3)  # at the gate (not in SQLite's busy handler)
            urgent = asyncio.create_task(_writer(sessions, 99, done, urgent=True))
            await _until_waiting(engine, 4)
            assert done == []
        await asyncio.gather(*ordinary, urgent)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ProcessedUpdate)) == 5
    finally:
        await engine.dispose()
    # The urgent writer first; the ordinary ones in the order they reached the gate (each
    # takes a pooled connection first, so not always the order they were started in).
    assert done[0] == 99 and sorted(done[1:]) == [10, 11, 12]


async def test_a_rolled_back_writer_gives_the_gate_back(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    done: list[int] = []
    try:
        async with sessions() as session:
            session.add(ProcessedUpdate(update_id=1, processed_at=datetime.now(UTC)))
            await session.flush()
            await session.rollback()
        await asyncio.wait_for(_writer(sessions, 2, done), 10)
    finally:
        await engine.dispose()
    assert done == [2]


async def test_a_writer_waits_for_a_connection_before_it_takes_the_gate(tmp_path: Path) -> None:
    """Every pooled connection held by transactions that read and will write: a session whose
    first statement is a write used to take the gate and then wait for the pool, while those
    transactions waited for the gate (the bot hung at start with 30 patients' /start)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    pool = engine.sync_engine.pool
    held = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    go = asyncio.Event()
    done: list[int] = []

    async def reads_then_writes(update_id: int) -> None:
        async with sessions.begin() as session:
            await session.scalar(select(func.count()).select_from(ProcessedUpdate))
            await go.wait()
            session.add(ProcessedUpdate(update_id=update_id, processed_at=datetime.now(UTC)))
            await session.flush()
        done.append(update_id)

    async def writes_first() -> None:
        async with sessions.begin() as session:
            await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.update_id == -1))
        done.append(0)

    try:
        readers = [asyncio.create_task(reads_then_writes(i + 1)) for i in range(held)]
        await asyncio.sleep(0.3)  # every connection is taken
        writer = asyncio.create_task(writes_first())
        await asyncio.sleep(0.3)
        go.set()
        await asyncio.wait_for(asyncio.gather(*readers, writer), 20)
    finally:
        await engine.dispose()
    assert sorted(done) == list(range(held + 1))


async def test_a_transaction_that_only_reads_never_holds_the_gate(tmp_path: Path) -> None:
    """The first version held the gate from a flush that wrote nothing: a reader open for long
    (the dispatcher between its sends) then stopped every writer."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    done: list[int] = []
    try:
        async with sessions.begin() as reader:
            await reader.scalar(select(func.count()).select_from(ProcessedUpdate))
            await reader.flush()  # nothing to write
            await asyncio.wait_for(_writer(sessions, 1, done), 10)
    finally:
        await engine.dispose()
    assert done == [1]


async def test_a_connection_back_in_the_pool_gives_the_gate_back(tmp_path: Path) -> None:
    """A session closed without commit or rollback (a cancelled task): its connection's reset
    gives the gate back."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    done: list[int] = []
    try:
        session = sessions()
        session.add(ProcessedUpdate(update_id=1, processed_at=datetime.now(UTC)))
        await session.flush()
        await session.close()
        await asyncio.wait_for(_writer(sessions, 2, done), 10)
        async with sessions() as check:
            kept = await check.scalars(select(ProcessedUpdate.update_id))
            assert list(kept) == [2]
    finally:
        await engine.dispose()
    assert done == [2] and _gate(engine).waiting == 0


async def test_a_writer_that_waits_too_long_fails_as_a_locked_database_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_gate, "WAIT_LIMIT", 0.2)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions.begin() as holder:
            holder.add(ProcessedUpdate(update_id=1, processed_at=datetime.now(UTC)))
            await holder.flush()
            with pytest.raises(OperationalError):
                await _writer(sessions, 2, [])
        await asyncio.wait_for(_writer(sessions, 3, []), 10)  # the gate still works after it
    finally:
        await engine.dispose()


async def test_postgresql_has_no_gate() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        assert write_gate_of(engine.sync_engine) is None
    finally:
        await engine.dispose()
