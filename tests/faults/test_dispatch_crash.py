"""SIGKILL of the bot process (``python -m bot run``) in the middle of a wave of 1,000 due
check-ins, then a restart: every check-in is sent, and none twice beyond the bound below.

The bound: the dispatcher claims and opens at most ``dispatch.BATCH`` rows per round and records
the round's results in one transaction after sending (``dispatch.CONCURRENCY`` of them in flight
at a time). A process killed mid-round leaves those rows claimed: some of them reached Telegram,
some did not, and the database cannot tell which. The restarted process sees that their holder
(same host, its pid gone) is dead, releases them at once — not after ``dispatch.STALE_CLAIM`` —
and sends them again. So at most ``dispatch.BATCH`` check-ins are sent twice, and none is lost.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from bot.db.session import create_engine
from bot.sandbox.fake_api import FakeTelegramServer
from bot.services import dispatch
from tests.services.population import (
    TOKEN,
    bot_process,
    logs,
    prepare_wave,
    recorded,
    stop_processes,
    wait_until,
)

pytestmark = [pytest.mark.fault, pytest.mark.slow]
CHECKINS = 1000
DUPLICATES_AT_MOST = dispatch.BATCH


async def test_sigkill_mid_wave_loses_no_checkin_and_repeats_at_most_one_round(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = create_engine(url)
    server = FakeTelegramServer(bot_token=TOKEN)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        sessions, chats = await prepare_wave(engine, server, count=CHECKINS)

        first = bot_process(server, database_url=url, schema=None, cwd=tmp_path, name="first")
        processes.append(first)

        async def wave_under_way() -> bool:
            return len(server.sent()) >= CHECKINS // 4

        await wait_until(wave_under_way, timeout=120, processes=processes, cwd=tmp_path)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)  # reaped: its pid is gone, as after a real crash
        sent_at_kill = len(server.sent())
        assert sent_at_kill < CHECKINS, "the wave ended before the kill: nothing was tested"
        processes.remove(first)

        processes.append(
            bot_process(server, database_url=url, schema=None, cwd=tmp_path, name="second")
        )

        async def all_sent_and_recorded() -> bool:
            reached = sum(bool(server.sent(chat_id)) for chat_id in chats)
            return reached == CHECKINS and await recorded(sessions) == CHECKINS

        await wait_until(all_sent_and_recorded, timeout=180, processes=processes, cwd=tmp_path)

        per_chat = Counter(message.chat_id for message in server.sent())
        assert all(per_chat[chat_id] >= 1 for chat_id in chats)  # none lost
        duplicates = sum(per_chat[chat_id] - 1 for chat_id in chats)
        assert duplicates <= DUPLICATES_AT_MOST, (duplicates, sent_at_kill, logs(tmp_path))
        assert all(process.poll() is None for process in processes), logs(tmp_path)
    finally:
        stop_processes(processes)
        await server.stop()
        await engine.dispose()
