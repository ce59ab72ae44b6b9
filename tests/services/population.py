"""Many patients with a check-in due, written straight into the database, and real bot
processes to send them (the multi-process and crash tests).

Going through /start and consent for a thousand patients would test the conversation, not the
dispatcher, and take minutes; these rows are what consent leaves behind: an active episode of
the real protocol version (same snapshot as the bot registers) and one scheduled check-in.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import ManualClock
from bot.db.models import CheckIn, Episode, Patient
from bot.db.session import make_sessionmaker, upgrade_database
from bot.protocols import ProtocolRegistry, default_schedules_dir
from bot.sandbox.fake_api import FakeTelegramServer
from bot.services.context import ProtocolStore

#: First chat id of the population: far from the ids the harness's own patients use.
CHAT_BASE = 700_000
#: A well-formed token for the fake server: with a token, ``run`` is the production bot
#: (rate limiter on), not the sandbox.
TOKEN = "123456:" + "D" * 35
ROOT = Path(__file__).resolve().parents[2]
STAFF_CHAT = -1001000000001


async def populate(
    sessions: async_sessionmaker[AsyncSession],
    *,
    count: int,
    due_at: datetime,
    chat_base: int = CHAT_BASE,
    def_id: str = "d1",
    window: timedelta = timedelta(hours=10),
    time_zone: str = "Europe/Paris",
) -> list[int]:
    """``count`` active follow-ups with check-in ``def_id`` due at ``due_at``; their chat ids."""
    registry = ProtocolRegistry.from_dir(default_schedules_dir())
    protocol = registry.latest("knee-cryoneurolysis")
    chats = [chat_base + index for index in range(count)]
    async with sessions.begin() as session:
        row = await ProtocolStore(registry).row_for(session, protocol, ManualClock(due_at))
        for chat_id in chats:
            patient = Patient(label=f"L-{chat_id}", chat_id=chat_id, created_at=due_at)
            episode = Episode(
                patient=patient,
                protocol_version_id=row,
                procedure_at=due_at - timedelta(days=1, hours=1),
                time_zone=time_zone,
                side="left",
                indication="osteoarthritis",
                language="fr",
                status="active",
                baseline_pain=6,
                baseline_source="staff",
                consent_version=protocol.consent.version,
                consented_at=due_at - timedelta(days=1),
                reask_count=0,
                created_at=due_at - timedelta(days=2),
                created_by="test",
            )
            session.add(
                CheckIn(
                    episode=episode,
                    def_id=def_id,
                    due_at=due_at,
                    window_ends_at=due_at + window,
                    status="scheduled",
                    attempts=0,
                    question_index=0,
                    reask_count=0,
                    selection=[],
                    reminders_sent=0,
                    opening_sent=0,
                )
            )
    return chats


def bot_process(
    server: FakeTelegramServer,
    *,
    database_url: str,
    schema: str | None,
    cwd: Path,
    name: str,
    receive_updates: bool = True,
    metrics_port: int = 0,
) -> subprocess.Popen[bytes]:
    """``python -m bot run`` against the fake server; its output goes to ``cwd/<name>.log``;
    ``/healthz`` on ``metrics_port`` when given."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "TZ", "SYSTEMROOT")
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": server.bot_token,
            "TELEGRAM_API_BASE_URL": server.api_base_url,
            "DATABASE_URL": database_url,
            "DATABASE_SCHEMA": schema or "",
            "STAFF_CHAT_ID": str(STAFF_CHAT),
            "STAFF_USER_IDS": "5001",
            "ALLOW_UNAPPROVED_PROTOCOL": "true",
            "RECEIVE_UPDATES": "true" if receive_updates else "false",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            "MEDIA_DIR": str(cwd / "media"),
            "METRICS_PORT": str(metrics_port),
        }
    )
    log = (cwd / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=cwd, env=env, stdout=log, stderr=log
    )


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill every process still running and reap it (a zombie would look alive)."""
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait(timeout=30)


def logs(cwd: Path) -> str:
    """The tail of every bot log in ``cwd``, for a failure message."""
    return "\n".join(
        f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
        for path in sorted(cwd.glob("*.log"))
    )


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline for a polled condition, not an I/O timeout
    processes: list[subprocess.Popen[bytes]],
    cwd: Path,
) -> None:
    """Poll ``check`` (the fake server runs on this loop meanwhile); fail early if a bot died."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        dead = [p.args for p in processes if p.poll() is not None]
        assert not dead, f"a bot process exited early\n{logs(cwd)}"
        assert asyncio.get_running_loop().time() < deadline, f"timed out\n{logs(cwd)}"
        await asyncio.sleep(0.25)


async def recorded(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Check-ins whose sending the database has recorded."""
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(CheckIn).where(CheckIn.sent_at.is_not(None))
        )
    return int(count or 0)


def daytime_zone(now: datetime) -> str:
    """A time zone where ``now`` is about midday: real processes run on the wall clock, and in
    the patients' quiet hours (21:00-08:00 by the protocol) a due check-in rightly waits for
    the morning (these tests failed whenever they ran after 21:00 in Paris)."""
    offset = 12 - now.astimezone(UTC).hour
    if offset > 14:
        offset -= 24
    elif offset < -12:
        offset += 24
    return f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-2 is two hours ahead of UTC


async def prepare_wave(
    engine: AsyncEngine, server: FakeTelegramServer, *, count: int
) -> tuple[async_sessionmaker[AsyncSession], list[int]]:
    """Migrate, store ``count`` check-ins due now, start the fake server and register the chats
    (and the staff group): the common start of the crash and multi-process tests."""
    await upgrade_database(engine)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    chats = await populate(sessions, count=count, due_at=now, time_zone=daytime_zone(now))
    await server.start()
    server.add_group(STAFF_CHAT)
    for chat_id in chats:
        server.add_user(chat_id)
    return sessions, chats
