"""The measured scenarios: the bot's dispatch wave, its ceiling, the rate-limited run, replies and
scale. Each one starts its own fake server subprocess and a fresh database (a SQLite file, or a
new PostgreSQL schema dropped afterwards), and runs the real bot (``BotRuntime``: PTB polling,
the real dispatcher and handlers) in this process, so the event-loop stall is the bot's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine
from telegram import Bot
from telegram.request import BaseRequest, HTTPXRequest

from bot.bench import data
from bot.bench.server import STAFF_CHAT, ServerProcess, chat_of, start_server
from bot.bench.stall import StallMeter
from bot.clock import ManualClock
from bot.config import Settings
from bot.db.models import Answer, CheckIn
from bot.services import dispatch
from bot.telegram.runtime import BotRuntime
from bot.telegram.sender import keyboard

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Database:
    """Where one scenario's data lives."""

    url: str
    schema: str | None

    @property
    def backend(self) -> str:
        """sqlite or postgresql."""
        return "postgresql" if self.url.startswith("postgresql") else "sqlite"


@asynccontextmanager
async def fresh_database(postgres: str | None) -> AsyncIterator[Database]:
    """A new SQLite file, or a new schema of ``postgres`` dropped on exit."""
    if postgres is None:
        folder = Path(tempfile.mkdtemp(prefix="cryo-bench-db-"))
        yield Database(f"sqlite+aiosqlite:///{folder / 'bench.db'}", None)
        for suffix in ("", "-wal", "-shm"):
            (folder / f"bench.db{suffix}").unlink(missing_ok=True)
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(postgres)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Database(postgres, schema)
    finally:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def bench_settings(db: Database, server: ServerProcess) -> Settings:
    """Settings for a benchmark bot (never read from the environment)."""
    return Settings(
        _env_file=None,
        telegram_bot_token="",
        telegram_api_base_url=server.api_url,
        bot_username="cryo_followup_bot",
        database_url=db.url,
        database_schema=db.schema,
        staff_chat_id=STAFF_CHAT,
        staff_user_ids=(1,),
        allow_unapproved_protocol=True,
        media_dir=Path(tempfile.gettempdir()) / "cryo-bench-media",
    )


@asynccontextmanager
async def running_bot(
    db: Database, server: ServerProcess, clock: ManualClock, *, rate_limit: bool = False
) -> AsyncIterator[BotRuntime]:
    """The real bot against the bench server, started (polling) with no wave yet."""
    runtime = await BotRuntime.create(
        bench_settings(db, server),
        clock=clock,
        token=server.token,
        base_url=server.api_url,
        base_file_url=server.api_url.removesuffix("/bot") + "/file/bot",
        require_approval=False,
        rate_limit=rate_limit,
    )
    try:
        yield runtime
    finally:
        await runtime.stop()


async def start_bot(runtime: BotRuntime, *, wake: bool = False) -> None:
    """Start polling and run the first (empty) dispatcher tick.

    By default the bot's own wake-up job is off and the bench drives :func:`dispatch.tick`:
    one tick loop per process, as in production (with the waker on, the bench's tick and the
    bot's would race and each send part of a wave). ``wake`` keeps the bot's waker (start-up).
    """
    if not wake:
        await runtime.start(wake_dispatcher=False)
        await dispatch.tick(runtime.ctx)
        return
    await runtime.start(safety_tick=timedelta(hours=1))
    for _ in range(6000):  # the first (empty) tick runs at start; let it finish
        if runtime.waker is not None and runtime.waker.last_report is not None:
            return
        await asyncio.sleep(0.01)


def _delivery(stats: dict[str, Any], first: int, count: int, per_patient: int) -> dict[str, int]:
    per_chat = stats["per_chat"]
    counts = [per_chat.get(str(chat_of(i)), 0) for i in range(first, first + count)]
    return {
        "lost": sum(1 for c in counts if c == 0),
        "duplicates": sum(c - per_patient for c in counts if c > per_patient),
    }


async def dispatch_wave(
    n: int, *, latency: float, postgres: str | None, rate_limit: bool = False
) -> dict[str, Any]:
    """``n`` check-ins due at one instant: rate, lost, duplicates, longest loop stall."""
    server = start_server(n, latency=latency, enforce_limits=rate_limit)
    try:
        async with fresh_database(postgres) as db:
            clock = ManualClock(NOW - timedelta(hours=1))
            async with running_bot(db, server, clock, rate_limit=rate_limit) as runtime:
                await data.patients(
                    runtime.engine, 1, n, now=NOW, procedure_at=NOW - timedelta(days=1)
                )
                await data.due_checkins(runtime.engine, 1, n, due=NOW)
                await start_bot(runtime)
                clock.set(NOW)
                meter = StallMeter()
                meter.start()
                since = time.time()
                started = time.perf_counter()
                report = await dispatch.tick(runtime.ctx)
                elapsed = time.perf_counter() - started
                stall = await meter.stop()
                async with runtime.ctx.sessions() as session:
                    awaiting = await session.scalar(
                        select(func.count(CheckIn.id)).where(
                            CheckIn.status == "awaiting", CheckIn.sent_at.is_not(None)
                        )
                    )
            stats = await server.stats(since)
    finally:
        server.stop()
    return {
        "backend": db.backend,
        "checkins": n,
        "latency_ms": latency * 1000,
        "sent": report.sent,
        # The bench's tick is the only loop: it must have sent the whole wave itself.
        "tick_sent_all": report.sent == n,
        "seconds": elapsed,
        "msgs_per_s": n / elapsed,
        "recorded_sent": awaiting,
        "max_stall_ms": stall * 1000,
        "http_429": stats["status_codes"].get("429", 0),
        **_delivery(stats, 1, n, 1),
    }


async def ceiling(n: int, *, latency: float) -> dict[str, Any]:
    """python-telegram-bot's own ``send_message`` against the same server, best of concurrency
    1, 8, 64 and 128, with PTB's default transport (httpx) and with the bot's (aiohttp)."""
    from bot.services.ports import Button, OutgoingMessage
    from bot.telegram.http import AiohttpRequest

    server = start_server(n, latency=latency)
    results: dict[str, float] = {}
    rows = tuple(
        tuple(Button(str(v), f"a:{i}:0:{v}") for v in half)
        for i, half in enumerate((range(6), range(6, 11)))
    )
    markup = keyboard(OutgoingMessage("q", rows))
    message = "Bonjour ! Voici votre suivi.\n" + "Sur une échelle de 0 à 10 ... " * 4
    try:
        transports: dict[str, BaseRequest] = {
            "httpx": HTTPXRequest(connection_pool_size=128, pool_timeout=30),
            "aiohttp": AiohttpRequest(connection_pool_size=128, pool_timeout=30),
        }
        for transport, request in transports.items():
            bot = Bot(server.token, base_url=server.api_url, request=request)
            await bot.initialize()
            for concurrency in (1, 8, 64, 128):
                count = min(n, 100 if concurrency == 1 else 1000)
                queue: asyncio.Queue[int] = asyncio.Queue()
                for i in range(1, count + 1):
                    queue.put_nowait(chat_of(i))

                async def worker(q: asyncio.Queue[int] = queue, b: Bot = bot) -> None:
                    while not q.empty():
                        chat = q.get_nowait()
                        await b.send_message(chat, message, reply_markup=markup)

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                results[f"{transport} c={concurrency}"] = count / (time.perf_counter() - started)
            await bot.shutdown()
    finally:
        server.stop()
    return {"latency_ms": latency * 1000, "by_concurrency": results, "best": max(results.values())}


async def replies(
    n: int, *, wave: int, postgres: str | None, red_flag_every: int = 100
) -> dict[str, Any]:
    """``n`` patients answer their open check-in at once (1 in ``red_flag_every`` a pain of 9,
    which must alert staff), optionally while a ``wave``-check-in dispatch runs."""
    server = start_server(n + wave)
    try:
        async with fresh_database(postgres) as db:
            clock = ManualClock(NOW - timedelta(minutes=30))
            async with running_bot(db, server, clock) as runtime:
                engine = runtime.engine
                procedure = NOW - timedelta(days=1)
                await data.patients(engine, 1, n + wave, now=NOW, procedure_at=procedure)
                await data.open_checkins(engine, 1, n, sent=NOW - timedelta(minutes=30))
                if wave:
                    await data.due_checkins(engine, n + 1, wave, due=NOW)
                await start_bot(runtime)
                clock.set(NOW)
                items = [
                    (chat_of(i), "9" if i % red_flag_every == 0 else "4") for i in range(1, n + 1)
                ]
                meter = StallMeter()
                meter.start()
                since = time.time()
                counter = StatementCounter(engine)
                wave_task = asyncio.create_task(dispatch.tick(runtime.ctx)) if wave else None
                if wave_task is not None:
                    await asyncio.sleep(0.2)  # the wave is under way when the answers arrive
                queued = await server.burst(items)
                saved = 0
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    async with runtime.ctx.sessions() as session:
                        saved = (
                            await session.scalar(
                                select(func.count(Answer.id)).where(
                                    Answer.question_id == "pain_avg"
                                )
                            )
                            or 0
                        )
                    if saved >= n:
                        break
                    await asyncio.sleep(0.25)
                marker = runtime.ctx.unit.unit_phone  # in every safety advice
                stats = await server.stats(since, marker=marker)
                while stats["replied"] < n and time.monotonic() < deadline:
                    await asyncio.sleep(0.25)
                    stats = await server.stats(since, marker=marker)
                counter.stop()
                if wave_task is not None:
                    await wave_task
                stall = await meter.stop()
                async with runtime.ctx.sessions() as session:
                    wrong = await session.scalar(
                        select(func.count(Answer.id)).where(
                            Answer.question_id == "pain_avg", Answer.episode_id > n
                        )
                    )
                    answered = await session.scalar(
                        select(func.count(func.distinct(Answer.episode_id))).where(
                            Answer.question_id == "pain_avg"
                        )
                    )
    finally:
        server.stop()
    latencies = sorted(stats["alert_latency"])
    advice = sorted(stats["marked_latency"])
    alerted = set(stats["alert_labels"])
    expected = n // red_flag_every
    duration = (stats["last_reply"] or queued) - queued
    return {
        "backend": db.backend,
        "patients": n,
        "wave": wave,
        "saved": saved,
        "saved_for_wrong_patient": wrong,
        "replied": stats["replied"],
        "answers_per_s": n / duration if duration > 0 else 0.0,
        "alerts": len(latencies),
        "alerts_expected": expected,
        "alert_p50_ms": _percentile(latencies, 0.50) * 1000,
        "alert_p99_ms": _percentile(latencies, 0.99) * 1000,
        "advice_sent": len(advice),
        "advice_p99_ms": _percentile(advice, 0.99) * 1000,
        # Lost: an answer never saved, a staff card or a safety advice never sent.
        "lost": (n - (answered or 0))
        + max(0, expected - len(alerted))
        + max(0, expected - len(advice)),
        # Duplicated: an answer saved twice, a staff card sent twice for one patient.
        "duplicates": (saved - (answered or 0)) + (len(stats["alert_labels"]) - len(alerted)),
        "max_stall_ms": stall * 1000,
        # Per answer, from the burst until every reply arrived (the wave's own too, if any).
        "statements_per_reply": counter.statements / n,
        "commits_per_reply": counter.commits / n,
    }


class StatementCounter:
    """Counts the SQL statements and commits the bot runs on ``engine`` (a SQLAlchemy event
    listener), leaving out the bench's own polling of the answers saved so far."""

    def __init__(self, engine: Any) -> None:
        self.statements = 0
        self.commits = 0
        self._engine = engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._statement)
        event.listen(self._engine, "commit", self._commit)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "count(answers.id)" not in statement and "count(distinct" not in statement.lower():
            self.statements += 1

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def stop(self) -> None:
        """Stop counting."""
        event.remove(self._engine, "before_cursor_execute", self._statement)
        event.remove(self._engine, "commit", self._commit)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


async def scale(patients: int, *, postgres: str | None) -> dict[str, Any]:
    """``patients`` enrolled over six months (10 check-in rows each): start-up time and memory
    of a fresh process, and the cost of one dispatcher tick with 0 and 100 due rows."""
    server = start_server(patients)
    try:
        async with fresh_database(postgres) as db:
            clock = ManualClock(NOW)
            async with running_bot(db, server, clock) as runtime:
                loaded = time.perf_counter()
                await data.course(runtime.engine, patients, now=NOW)
                load_s = time.perf_counter() - loaded
                async with runtime.engine.begin() as connection:
                    await connection.execute(text("ANALYZE"))  # plans as after a day in use
                async with runtime.ctx.sessions() as session:
                    rows = await session.scalar(select(func.count(CheckIn.id))) or 0
            startup = _measure_startup(db, server)
            async with running_bot(db, server, clock) as runtime:
                await start_bot(runtime)  # sends need PTB initialised; first tick done
                idle = await _timed_tick(runtime)
                async with runtime.ctx.sessions.begin() as session:
                    due = (
                        select(CheckIn.id)
                        .where(CheckIn.status == "scheduled", CheckIn.def_id != "m12")
                        .order_by(CheckIn.due_at)
                        .limit(100)
                        .scalar_subquery()
                    )
                    await session.execute(
                        update(CheckIn)
                        .where(CheckIn.id.in_(due))
                        .values(due_at=NOW - timedelta(minutes=1))
                        .execution_options(synchronize_session=False)
                    )
                busy, plans = await _timed_tick(runtime, explain=True)
    finally:
        server.stop()
    return {
        "backend": db.backend,
        "patients": patients,
        "checkin_rows": rows,
        "load_seconds": load_s,
        **startup,
        "tick_idle_ms": idle[0] * 1000,
        "tick_100_due_ms": busy * 1000,
        "claim_plan": plans,
    }


async def _timed_tick(runtime: BotRuntime, *, explain: bool = False) -> Any:
    """One dispatcher tick, timed; with ``explain``, the plan of each distinct statement it ran
    on the check-ins table (the claim first), to show which ones grow with the table."""
    captured: dict[str, Any] = {}

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "checkins" in statement and statement not in captured:
            captured[statement] = parameters

    sync_engine = runtime.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", capture)
    try:
        started = time.perf_counter()
        await dispatch.tick(runtime.ctx)
        elapsed = time.perf_counter() - started
    finally:
        event.remove(sync_engine, "before_cursor_execute", capture)
    if not explain:
        return elapsed, []
    postgres = runtime.engine.dialect.name == "postgresql"
    prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
    plans: list[str] = []
    for statement, given in captured.items():
        first = " ".join(statement.split())[:90]
        many = isinstance(given, list) and given and isinstance(given[0], tuple | list | dict)
        parameters = given[0] if many else given  # an executemany: plan its first row
        async with runtime.engine.connect() as connection:
            if postgres:  # asyncpg directly: SQLAlchemy takes EXPLAIN UPDATE for a plain DML
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                records = await driver.fetch(prefix + statement, *(parameters or ()))
                rows = [str(record[0]) for record in records]
            else:
                result = await connection.exec_driver_sql(prefix + statement, parameters)
                rows = [str(row[-1]) for row in result]
            await connection.rollback()
        steps = [re.sub(r"\s*\(cost=[^)]*\)", "", r).strip() for r in rows]
        # "SCAN checkins USING INDEX ix" reads a (partial) index only, not the table.
        scans = any(r.endswith("SCAN checkins") or "Seq Scan on checkins" in r for r in rows)
        plans.append(
            f"{first} ...\n        {'FULL SCAN' if scans else 'indexed'}: {' | '.join(steps)}"
        )
    return elapsed, plans


def _measure_startup(db: Database, server: ServerProcess) -> dict[str, float]:
    """Start-up time and resident memory of a fresh bot process on this database."""
    env = dict(os.environ)
    env.update(
        {
            "BENCH_DATABASE_URL": db.url,
            "BENCH_DATABASE_SCHEMA": db.schema or "",
            "BENCH_API": server.api_url,
            "BENCH_TOKEN": server.token,
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot.bench.startup"],
        capture_output=True,
        timeout=300,
        check=False,
        env=env,
    )
    lines = done.stdout.decode().strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError("bot.bench.startup failed:\n" + done.stderr.decode()[-3000:])
    result: dict[str, float] = json.loads(lines[-1])
    return result
