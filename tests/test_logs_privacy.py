"""Logs carry ids, never personal or health data: the whole sandbox demo runs with JSON logs at
DEBUG level, and its logs are searched for what the transcript shows the patients said and who
they are (labels, free texts, enrolment tokens, Telegram names)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: Keys that would carry a person's data or an answer's value if a log call ever added them.
FORBIDDEN_KEYS = {
    "text",
    "raw_text",
    "label",
    "value",
    "values",
    "answer",
    "caption",
    "name",
    "first_name",
    "full_name",
    "staff_name",
    "phone",
    "token",
    "flags",
    "note",
}
NAMES = ("Anne", "John", "Claire", "Martin")


def _secrets_from_transcript(transcript: str) -> set[str]:
    """What patients typed, their labels and tokens, as the demo printed them."""
    secrets = set(re.findall(r"\bP-\d{3}\b", transcript))
    for said in re.findall(r"^patient P-\d{3}\s+(.+)$", transcript, re.MULTILINE):
        if said.startswith("(taps"):
            continue
        if said.startswith("/start "):
            secrets.add(said.split(" ", 1)[1].strip())
        else:
            secrets.add(said.strip())
    return secrets


def test_demo_logs_hold_no_label_free_text_token_or_name(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "DATABASE_", "LOG_", "STAFF_", "WEBHOOK_"))
    }
    env.update({"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"})
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    secrets = _secrets_from_transcript(done.stdout)
    # The script's patients really spoke: labels, a token and free texts are in the transcript.
    assert {"P-001", "P-002", "un peu gonflé", "about 3"} <= secrets
    assert any(len(s) > 30 for s in secrets), "no enrolment token found in the transcript"

    events = []
    for line in done.stderr.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)  # every line is JSON (LOG_FORMAT=json)
        events.append(record["event"])
        leaked_keys = FORBIDDEN_KEYS & set(record)
        assert not leaked_keys, f"log event {record['event']!r} carries {leaked_keys}"
        for secret in secrets | set(NAMES):
            assert secret not in line, f"log event {record['event']!r} mentions {secret!r}"
    assert {"bot_started", "dispatched", "findings", "alert_delivered"} <= set(events)


CANARY = "canari-5f2e mon tel 0611223344"


def _webhook_bot(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--webhook"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_no_failure_path_logs_what_a_patient_sent(tmp_path: Path) -> None:
    """A canary goes through each failure path of the webhook: malformed JSON (400), JSON that
    is not an update (400), an update python-telegram-bot cannot read (set aside, 200), a
    stranger's message; no log line may carry it. PTB used to log an unreadable update whole
    at CRITICAL, and the webhook a body it refused."""
    import asyncio
    import socket
    import time

    import aiohttp

    from bot.sandbox.fake_api import FakeTelegramServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])

    async def scenario() -> tuple[list[int], str]:
        server = FakeTelegramServer(bot_token="123456:" + "L" * 35)
        await server.start()
        server.add_user(4242, first_name=CANARY)
        server.add_group(-1001000000001)  # the staff chat the preflight checks
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TELEGRAM_", "DATABASE_", "LOG_", "STAFF_", "WEBHOOK_"))
        }
        env.update(
            {
                "TELEGRAM_BOT_TOKEN": server.bot_token,
                "TELEGRAM_API_BASE_URL": server.api_base_url,
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'canary.db'}",
                "STAFF_CHAT_ID": "-1001000000001",
                "STAFF_USER_IDS": "5001",
                "ALLOW_UNAPPROVED_PROTOCOL": "true",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "DEBUG",
                "MEDIA_DIR": str(tmp_path / "media"),
                "WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
                "WEBHOOK_SECRET": "canary-secret",
                "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            }
        )
        bot = _webhook_bot(env, tmp_path)
        statuses: list[int] = []
        chat = {"id": 4242, "type": "private", "first_name": CANARY}
        user = {"id": 4242, "is_bot": False, "first_name": CANARY}
        bodies = [
            b'{"update_id": 1, "message": {"text": "' + CANARY.encode() + b'"',  # cut off
            json.dumps({"note": CANARY}).encode(),
            json.dumps({"update_id": 2, "poll": {"id": "1", "question": CANARY}}).encode(),
            json.dumps(
                {
                    "update_id": 3,
                    "message": {
                        "message_id": 1,
                        "date": int(time.time()),
                        "chat": chat,
                        "from": user,
                        "text": CANARY,
                    },
                }
            ).encode(),
        ]
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": "canary-secret",
        }
        try:
            async with aiohttp.ClientSession() as http:
                for body in bodies:
                    for _ in range(300):  # until the bot listens
                        try:
                            async with http.post(
                                f"http://127.0.0.1:{port}/hook", data=body, headers=headers
                            ) as resp:
                                statuses.append(resp.status)
                            break
                        except aiohttp.ClientConnectionError:
                            await asyncio.sleep(0.1)
            await server.wait_for_count(1, chat_id=4242, timeout=30)
        finally:
            bot.terminate()
            _out, err = await asyncio.to_thread(bot.communicate, timeout=30)
            await server.stop()
        return statuses, err

    statuses, logs = asyncio.run(scenario())
    assert statuses == [400, 400, 200, 200]
    assert logs.strip(), "the bot logged nothing: the test would prove nothing"
    for line in logs.splitlines():
        assert CANARY not in line and "0611223344" not in line, line[:200]
