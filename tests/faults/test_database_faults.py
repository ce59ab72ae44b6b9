"""The database failing under the bot: PostgreSQL connections killed (the bot reconnects through
``pool_pre_ping`` and goes on) and a full disk on SQLite (a clear error, no corruption, and the
bot goes on once space is back)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.db.models import Alert, Answer
from bot.logs import configure_logging
from tests.conftest import POSTGRES_URL
from tests.faults.support import CuttableProxy, ErrorRecorder, advance
from tests.harness import PARIS, STAFF_CHAT, BotHarness, TestDatabase, eventually, question

pytestmark = pytest.mark.fault

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)


async def _terminate_my_connections() -> int:
    """pg_terminate_backend on every PostgreSQL backend serving this process (the bot's pool)."""
    port = make_url(POSTGRES_URL).port or 5432
    mine = [
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port
    ]
    killer = create_async_engine(POSTGRES_URL, poolclass=NullPool)
    try:
        async with killer.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE client_port = ANY(:ports) AND pid <> pg_backend_pid()"
                ),
                {"ports": mine},
            )
            return int(result.scalar_one())
    finally:
        await killer.dispose()


async def test_postgres_connections_terminated_the_bot_reconnects_and_goes_on(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    async with BotHarness(postgres_database, tmp_path) as harness:
        errors = ErrorRecorder().attach(harness)
        patient = await harness.consented_patient(3001)
        assert await _terminate_my_connections() >= 1
        await advance(harness, EVENING)  # the dispatcher's next tick
        question = await patient.until("douleur de votre genou en ce moment")
        assert await _terminate_my_connections() >= 1
        patient.tap(question, "4")  # a handler's next transaction
        await patient.until("Noté : 4/10")
        assert await _terminate_my_connections() >= 1
        patient.say("je dirais que ça saigne un peu")  # free text, while the pool is dead again
        await harness.settle()
        async with harness.ctx.sessions() as session:
            saved = list(await session.scalars(select(Answer.question_id).order_by(Answer.id)))
        assert saved[:2] == ["baseline", "pain_evening"] and len(saved) == 3
        assert errors.errors == []


async def test_full_disk_gives_a_clear_error_no_corruption_and_the_bot_goes_on(
    tmp_path: Path,
) -> None:
    # The production log set-up: structlog's default renders tracebacks with rich and every
    # frame's locals, which takes seconds per error (and would print the patient's text).
    configure_logging("json", "WARNING")
    database = TestDatabase(url=f"sqlite+aiosqlite:///{tmp_path / 'full.db'}", schema=None)
    async with BotHarness(database, tmp_path) as harness:
        errors = ErrorRecorder().attach(harness)
        patient = await harness.consented_patient(3002)
        assert harness.runtime is not None
        engine = harness.runtime.engine
        async with engine.connect() as connection:
            pages = (await connection.execute(text("PRAGMA page_count"))).scalar_one()
        limit = {"pages": int(pages)}

        def cap(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA max_page_count = {limit['pages']}")
            cursor.close()

        event.listen(engine.sync_engine, "checkout", cap)
        secret = "ma douleur est privée " * 150
        typed = 0
        for _ in range(8):  # notes of 3,300 characters until the file cannot grow
            patient.say(secret)
            typed += 1
            # A note the full disk refuses is not lost: the intake keeps retrying it (never
            # confirmed to Telegram), so this waits for it to be saved or to fail once.
            with contextlib.suppress(TimeoutError):
                await harness.settle(timeout=5)
            if errors.errors:
                break
        assert errors.errors and errors.errors[0].startswith("OperationalError"), errors.errors
        assert "database or disk is full" in errors.messages[0]
        assert "privée" not in errors.messages[0]  # hide_parameters: no answer in the log
        with sqlite3.connect(tmp_path / "full.db") as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        limit["pages"] = 1_000_000_000  # space is back
        # The note the full disk refused was never confirmed to Telegram: the intake retries it
        # (with backoff) and it is saved now; then the evening check-in goes on as usual.
        await harness.settle(timeout=60)
        async with harness.ctx.sessions() as session:
            notes = await session.scalar(
                select(func.count(Answer.id)).where(Answer.raw_text == secret)
            )
        assert notes == typed  # nothing lost to the full disk
        await advance(harness, EVENING)
        question = await patient.until("douleur de votre genou en ce moment")
        patient.tap(question, "3")
        await patient.until("Noté : 3/10")

        async def saved() -> None:
            async with harness.ctx.sessions() as session:
                values = list(
                    await session.scalars(
                        select(Answer.value).where(
                            Answer.question_id == "pain_evening", Answer.value.is_not(None)
                        )
                    )
                )
                assert values == [3]

        await eventually(saved)
        event.remove(engine.sync_engine, "checkout", cap)


async def test_a_15_s_database_outage_loses_no_answer_and_no_alert(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    """PostgreSQL unreachable for 14 s used to cost every answer sent meanwhile (30/30), each
    patient got an apology, and a pain of 9 raised no alert: the updates were confirmed to
    Telegram although nothing was saved. Now they wait, unconfirmed, and are handled once the
    database is back."""
    url = make_url(POSTGRES_URL)
    proxy = await CuttableProxy(url.host or "127.0.0.1", url.port or 5432).start()
    proxied = TestDatabase(
        url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        schema=postgres_database.schema,
    )
    try:
        async with BotHarness(proxied, tmp_path) as harness:
            patients = [
                await harness.consented_patient(3100 + i, label=f"O-{i:02d}") for i in range(10)
            ]
            await advance(harness, EVENING)
            questions = [await question(patient) for patient in patients]
            proxy.cut()
            for i, (patient, asked) in enumerate(zip(patients, questions, strict=True)):
                patient.tap(asked, "9" if i % 2 else "3")
            await asyncio.sleep(15)  # the outage
            proxy.restore()
            for patient in patients:
                await patient.until("Noté", timeout=60)
            await harness.settle(timeout=60)
            async with harness.ctx.sessions() as session:
                saved = list(
                    await session.scalars(
                        select(Answer.value).where(Answer.question_id == "pain_evening")
                    )
                )
                alerts = list(await session.scalars(select(Alert.rule_id)))
            cards = [m for m in harness.server.sent(STAFF_CHAT) if "URGENT" in (m.text or "")]
            apologies = sum(
                "Désolé, un problème" in text for p in patients for text in p.all_texts()
            )
    finally:
        await proxy.stop()
    assert sorted(saved) == [3] * 5 + [9] * 5  # 0 lost
    assert len(alerts) == 5 and len(cards) == 5  # every pain of 9 alerted, once
    assert apologies == 0
    print(f"\nDatabase outage 15 s: 10 answers, {10 - len(saved)} lost, {len(cards)} staff cards")
