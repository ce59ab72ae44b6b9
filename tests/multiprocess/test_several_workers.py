"""Three real bot processes on one token and one PostgreSQL, all started alike (``python -m bot
run``, updates on): one polls, the others only dispatch, and together they stay within
Telegram's limits, which the fake server enforces here (``enforce_limits``).

Before the polling lease and the shared pace, the same three processes all polled (Telegram's
409 Conflict, again and again) and each sent its own 29 messages a second: 1,852 answers 429
in one wave. Then the leader is killed with SIGKILL: a follower polls within a few seconds and
a patient's answer is still answered.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from bot.db.session import create_engine
from bot.sandbox.fake_api import FakeTelegramServer
from tests.conftest import POSTGRES_URL
from tests.harness import TestDatabase
from tests.services.population import (
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
#: Ten seconds' worth of Telegram's 30 messages a second (one message per check-in).
CHECKINS = 300


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _roles(ports: list[int]) -> list[str | None]:
    """What each process's ``/healthz`` says it is (None: not answering, e.g. killed)."""
    roles: list[str | None] = []
    async with aiohttp.ClientSession() as http:
        for port in ports:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                    roles.append((await answer.json()).get("polling"))
            except aiohttp.ClientError:
                roles.append(None)
    return roles


async def test_three_workers_poll_once_share_telegrams_limits_and_survive_the_leader(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    schema = postgres_database.schema
    assert schema is not None
    engine = create_engine(POSTGRES_URL, schema=schema)
    server = FakeTelegramServer(bot_token=TOKEN)
    server.enforce_limits = True
    processes: list[subprocess.Popen[bytes]] = []
    try:
        sessions, chats = await prepare_wave(engine, server, count=CHECKINS)
        ports = [_free_port() for _ in range(3)]
        processes = [
            bot_process(
                server,
                database_url=POSTGRES_URL,
                schema=schema,
                cwd=tmp_path,
                name=f"bot{index}",
                metrics_port=port,
            )
            for index, port in enumerate(ports)
        ]

        async def all_sent_and_recorded() -> bool:
            reached = sum(bool(server.sent(chat_id)) for chat_id in chats)
            return reached == CHECKINS and await recorded(sessions) == CHECKINS

        await wait_until(all_sent_and_recorded, timeout=240, processes=processes, cwd=tmp_path)

        per_chat = Counter(message.chat_id for message in server.sent())
        assert [per_chat[chat_id] for chat_id in chats] == [1] * CHECKINS, logs(tmp_path)
        answers = Counter(status for _method, status in server.request_log)
        assert answers[429] == 0, logs(tmp_path)  # Telegram's 30 a second, all three together
        assert server.request_log.count(("getUpdates", 409)) == 0, logs(tmp_path)
        dates = [message.date for message in server.sent()]
        assert max(dates) - min(dates) + 1 >= CHECKINS / 30  # not faster than 30 a second

        async def one_leader() -> bool:
            roles = await _roles(ports)
            return sorted(map(str, roles)) == ["follower", "follower", "leader"]

        await wait_until(one_leader, timeout=30, processes=processes, cwd=tmp_path)
        leader = (await _roles(ports)).index("leader")
        followers = [index for index in range(3) if index != leader]

        processes[leader].send_signal(signal.SIGKILL)
        processes[leader].wait(timeout=30)
        chat_id = chats[0]
        question = server.sent(chat_id)[0]
        server.press_button(chat_id, question.message_id, question.button_data("3"))
        survivors = [processes[index] for index in followers]

        async def answered() -> bool:
            return len(server.sent(chat_id)) >= 2

        await wait_until(answered, timeout=60, processes=survivors, cwd=tmp_path)

        async def taken_over() -> bool:
            roles = await _roles([ports[index] for index in followers])
            return sorted(map(str, roles)) == ["follower", "leader"]

        await wait_until(taken_over, timeout=30, processes=survivors, cwd=tmp_path)
        for index in range(3):
            log = (tmp_path / f"bot{index}.log").read_text(errors="replace").lower()
            assert "conflict" not in log and "409" not in log, logs(tmp_path)
        assert all(process.poll() is None for process in survivors), logs(tmp_path)
    finally:
        stop_processes(processes)
        await server.stop()
        await engine.dispose()
