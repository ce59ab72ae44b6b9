"""A rehearsal: ``python -m bot run`` (a real process) on an accelerated clock (CLOCK_SPEED,
CLOCK_START) against the fake Telegram server this test runs, and a scripted patient.

The patient is enrolled through the service in the test process (as the CLI does, on a manual
clock at CLOCK_START, so the link is valid whatever today's date), before the bot starts; from
then on everything goes through the bot process: /start, consent, check-ins, alerts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli.commands import offline_context
from bot.clock import ManualClock
from bot.config import Settings
from bot.db.session import create_engine, make_sessionmaker
from bot.domain.protocol import Indication, KneeSide
from bot.sandbox.fake_api import FakeTelegramServer
from bot.services import enrolment
from tests.harness import NURSE, ONCALL_CHAT, PARIS, STAFF_CHAT, TestDatabase
from tests.services.population import ROOT, TOKEN

#: Simulated time when the bot starts: early on the day of the procedure (Tuesday 1 Dec 2026),
#: so the patient has simulated hours to open the link before the first check-in at 18:00.
START = datetime(2026, 12, 1, 7, 0, tzinfo=PARIS)
PROCEDURE_AT = datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)


def _settings(database: TestDatabase, **extra: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database.url,
        "database_schema": database.schema,
        "timezone": "Europe/Paris",
        "allow_unapproved_protocol": True,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def enrol(
    database: TestDatabase,
    *,
    label: str,
    language: str,
    baseline: int,
    schedules_dir: Path | None = None,
) -> str:
    """Enrol a patient (migrating the database first); the token of their link."""
    async with offline_context(_settings(database, schedules_dir=schedules_dir)) as ctx:
        ctx.clock = ManualClock(START)
        invitation = await enrolment.enrol(
            ctx,
            label=label,
            procedure_at=PROCEDURE_AT,
            side=KneeSide.LEFT,
            indication=Indication.OSTEOARTHRITIS,
            language=language,
            protocol=ctx.protocols.registry.latest("knee-cryoneurolysis"),
            baseline_pain=baseline,
        )
    return invitation.token


@dataclass
class Rehearsal:
    """The running bot process, the fake server and a read-only view of the database."""

    server: FakeTelegramServer
    process: subprocess.Popen[bytes]
    sessions: async_sessionmaker[AsyncSession]
    log: Path

    def output(self) -> str:
        """The bot's output so far (for failure messages)."""
        return self.log.read_text(errors="replace")[-6000:]

    def alive(self) -> None:
        """Fail at once, with its output, when the bot process died."""
        assert self.process.poll() is None, f"the bot exited early\n{self.output()}"


def _environment(
    server: FakeTelegramServer, database: TestDatabase, tmp_path: Path, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": server.bot_token,
            "TELEGRAM_API_BASE_URL": server.api_base_url,
            "DATABASE_URL": database.url,
            "DATABASE_SCHEMA": database.schema or "",
            "STAFF_CHAT_ID": str(STAFF_CHAT),
            "ONCALL_CHAT_ID": str(ONCALL_CHAT),
            "STAFF_USER_IDS": str(NURSE),
            "TIMEZONE": "Europe/Paris",
            "ALLOW_UNAPPROVED_PROTOCOL": "true",
            "CLOCK_START": START.strftime("%Y-%m-%dT%H:%M"),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            "MEDIA_DIR": str(tmp_path / "media"),
        }
    )
    env.update(extra)
    return env


def _start(cwd: Path, environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m bot run``, its output in ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=cwd, env=environment, stdout=sink, stderr=sink
        )


@asynccontextmanager
async def rehearsal(
    database: TestDatabase, tmp_path: Path, *, speed: float, **env: str
) -> AsyncIterator[Rehearsal]:
    """Start the fake server and ``python -m bot run`` at ``speed``; stop both at the end."""
    server = FakeTelegramServer(bot_token=TOKEN)
    await server.start()
    server.add_group(STAFF_CHAT, title="Staff")
    server.add_group(ONCALL_CHAT, title="On call")
    server.add_user(NURSE, first_name="Claire", language_code="fr")
    log = tmp_path / "bot.log"
    environment = _environment(server, database, tmp_path, {"CLOCK_SPEED": f"{speed:g}", **env})
    process = _start(tmp_path, environment, log)
    engine = create_engine(database.url, schema=database.schema)
    running = Rehearsal(server, process, make_sessionmaker(engine), log)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while "Bot running" not in log.read_text(errors="replace"):
            running.alive()
            assert loop.time() < deadline, f"the bot did not start\n{running.output()}"
            await asyncio.sleep(0.05)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        await engine.dispose()
        await server.stop()
