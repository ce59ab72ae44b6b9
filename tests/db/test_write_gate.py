"""SQLite's one writer handed over in order, urgent work first (bot/db/write_gate.py), and the
priority gate that lets no ordinary turn in while an urgent one is inside (bot/db/priority.py).

Orders are asserted, never durations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import ProcessedUpdate
from bot.db.priority import PriorityGate, urgent_work
from bot.db.session import create_engine, make_sessionmaker, upgrade_database


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
            await asyncio.sleep(0.2)  # they wait for the gate (not in SQLite's busy handler)
            urgent = asyncio.create_task(_writer(sessions, 99, done, urgent=True))
            await asyncio.sleep(0.2)
            assert done == []
        await asyncio.gather(*ordinary, urgent)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ProcessedUpdate)) == 5
    finally:
        await engine.dispose()
    assert done == [99, 10, 11, 12]


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


async def test_no_ordinary_holder_is_let_in_while_an_urgent_one_is_inside() -> None:
    gate = PriorityGate(2)
    order: list[str] = []
    with urgent_work():
        await gate.acquire()  # an urgent holder; one place is still free

    async def ordinary(name: str) -> None:
        async with gate.slot():
            order.append(name)

    waiting = asyncio.create_task(ordinary("ordinary"))
    await asyncio.sleep(0.05)
    assert order == [] and gate.waiting == 1  # the free place is kept while urgent work runs
    gate.release(urgent=True)
    await asyncio.wait_for(waiting, 5)
    assert order == ["ordinary"]
