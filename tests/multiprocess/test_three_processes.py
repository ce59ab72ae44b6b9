"""Three real bot processes on one PostgreSQL send 1,000 due check-ins, each exactly once.

One process receives updates, two only dispatch (``RECEIVE_UPDATES=false``); all claim rows with
``FOR UPDATE SKIP LOCKED``. The processes are the production bot (``python -m bot run`` with a
token, so PTB's rate limiter is on: 29 messages a second for the three together, through the
database) pointed at the fake Telegram server running in this test (test_several_workers.py
starts three alike and lets the polling lease choose the poller).
Also: several processes migrating and registering protocols at the same moment on an empty
schema (PostgreSQL advisory lock, ``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bot.db.models import CheckIn, ProtocolVersion
from bot.db.session import create_engine
from bot.sandbox.fake_api import FakeTelegramServer
from tests.conftest import POSTGRES_URL
from tests.harness import TestDatabase
from tests.services.population import (
    ROOT,
    TOKEN,
    bot_process,
    logs,
    prepare_wave,
    recorded,
    stop_processes,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not POSTGRES_URL,
        reason="several bot processes share one database only on PostgreSQL: "
        "set TEST_DATABASE_URL (CI does)",
    ),
]
CHECKINS = 1000


async def test_three_processes_send_each_of_1000_due_checkins_exactly_once(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    schema = postgres_database.schema
    assert schema is not None
    engine = create_engine(POSTGRES_URL, schema=schema)
    server = FakeTelegramServer(bot_token=TOKEN)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        sessions, chats = await prepare_wave(engine, server, count=CHECKINS)

        processes = [
            bot_process(
                server,
                database_url=POSTGRES_URL,
                schema=schema,
                cwd=tmp_path,
                name=f"bot{index}",
                receive_updates=index == 0,
            )
            for index in range(3)
        ]

        async def all_sent_and_recorded() -> bool:
            reached = sum(bool(server.sent(chat_id)) for chat_id in chats)
            return reached == CHECKINS and await recorded(sessions) == CHECKINS

        await wait_until(all_sent_and_recorded, timeout=180, processes=processes, cwd=tmp_path)

        per_chat = Counter(message.chat_id for message in server.sent())
        assert [per_chat[chat_id] for chat_id in chats] == [1] * CHECKINS, logs(tmp_path)
        async with sessions() as session:
            holders = await session.scalar(select(func.count(func.distinct(CheckIn.claimed_by))))
            states = set(await session.scalars(select(CheckIn.status).distinct()))
        assert states == {"awaiting"}
        assert holders is not None and holders >= 2  # the processes really shared the work
        assert all(process.poll() is None for process in processes), logs(tmp_path)
    finally:
        stop_processes(processes)
        await server.stop()
        await engine.dispose()


async def test_processes_starting_together_on_an_empty_schema_migrate_once(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    """Alembic under the advisory lock and the protocol snapshot with ON CONFLICT DO NOTHING:
    three processes that start at the same moment all succeed and store each version once."""
    schema = postgres_database.schema
    assert schema is not None
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    env.update({"PYTHONPATH": str(ROOT), "DATABASE_URL": POSTGRES_URL, "DATABASE_SCHEMA": schema})
    starts = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "staff",
            "list",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    results = await asyncio.wait_for(
        asyncio.gather(*(process.communicate() for process in starts)), timeout=120
    )
    assert [process.returncode for process in starts] == [0, 0, 0], results

    engine = create_engine(POSTGRES_URL, schema=schema)
    try:
        async with engine.connect() as connection:
            versions = await connection.scalar(
                select(func.count()).select_from(ProtocolVersion.__table__)
            )
            revisions = await connection.scalar(text("SELECT count(*) FROM alembic_version"))
    finally:
        await engine.dispose()
    assert (versions, revisions) == (2, 1)  # knee-cryoneurolysis and chronic-knee-pain, once
