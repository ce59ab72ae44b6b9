"""Webhook mode (``python -m bot run --webhook``) and the operations endpoints, through the real
CLI entry point: only requests carrying Telegram's secret-token header reach the handlers."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from bot.cli.commands import run_bot
from bot.errors import ConfigError
from bot.sandbox.fake_api import FakeTelegramServer
from bot.telegram.webhook import plan_webhook
from tests import harness as h

TOKEN = "123456:" + "A" * 35
SECRET = "s3cret-Token_for-tests"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_update(update_id: int, user_id: int) -> dict[str, object]:
    user = {"id": user_id, "is_bot": False, "first_name": "Someone"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Someone"},
            "from": user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def _wait_webhook_registered(server: FakeTelegramServer) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(500):
            async with http.get(f"{server.api_base_url}{TOKEN}/getWebhookInfo") as resp:
                info = await resp.json()
            if info["result"]["url"]:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the bot never registered its webhook")


async def test_webhook_checks_secret_token_and_ops_endpoints_answer(
    database: h.TestDatabase, tmp_path: Path
) -> None:
    server = FakeTelegramServer(bot_token=TOKEN)
    await server.start()
    server.add_group(h.STAFF_CHAT)
    server.add_group(h.ONCALL_CHAT)
    for user_id in (777, 778, 779):
        server.add_user(user_id)
    hook_port, ops_port = _free_port(), _free_port()
    hook_url = f"http://127.0.0.1:{hook_port}/telegram/hook"
    settings = h.test_settings(
        database,
        server,
        tmp_path,
        telegram_bot_token=TOKEN,
        webhook_url=hook_url,
        webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{hook_port}",
        metrics_port=ops_port,
    )
    stop = asyncio.Event()
    bot = asyncio.create_task(run_bot(settings, stop=stop, webhook=True))
    try:
        await _wait_webhook_registered(server)
        async with aiohttp.ClientSession() as http:
            headers_cases = [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong-secret"}]
            for n, headers in enumerate(headers_cases):
                async with http.post(
                    hook_url, json=_start_update(900_001 + n, 777), headers=headers
                ) as resp:
                    assert resp.status == 403
            good = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with http.post(hook_url, json=_start_update(900_010, 778), headers=good) as resp:
                assert resp.status == 200
            await server.wait_for_count(1, chat_id=778)

            # Telegram's own delivery path: the fake server posts with the header it was given.
            server.send_text(779, "/start")
            await server.wait_for_count(1, chat_id=779)

            async def delivered() -> None:  # answered 200 only once handled, a moment later
                assert server.stats()["webhook_deliveries"] >= 1

            await h.eventually(delivered)
            assert server.sent(777) == []

            async with http.get(f"http://127.0.0.1:{ops_port}/healthz") as resp:
                assert resp.status == 200
                health = await resp.json()
            assert health == {
                "status": "ok",
                "database": "ok",
                "staff_chat": "ok",
                "oncall_chat": "ok",
                "application": "ok",
                "updates": "ok",
            }
            async with http.get(f"http://127.0.0.1:{ops_port}/metrics") as resp:
                assert resp.status == 200
                metrics = await resp.text()
            for name in (
                "cryo_messages_sent_total",
                "cryo_dispatcher_lag_seconds 0.0",
                "cryo_alerts_open 0.0",
                "cryo_urgent_alert_unacknowledged_seconds 0.0",
                "cryo_alert_ack_seconds_bucket",
            ):
                assert name in metrics
    finally:
        stop.set()
        assert await asyncio.wait_for(bot, 30) == 0
        await server.stop()


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"webhook_url": None, "webhook_secret": SECRET}, "WEBHOOK_URL"),
        ({"webhook_url": "https://bot.example/hook", "webhook_secret": None}, "WEBHOOK_SECRET"),
        (
            {
                "webhook_url": "https://bot.example/hook",
                "webhook_secret": SECRET,
                "webhook_listen": "8443",
            },
            "WEBHOOK_LISTEN",
        ),
    ],
)
def test_webhook_mode_refuses_to_start_without_url_secret_or_listen_address(
    overrides: dict[str, object], variable: str, tmp_path: Path
) -> None:
    from bot.config import Settings

    settings = Settings(_env_file=None, **overrides)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=variable):
        plan_webhook(settings)


async def test_healthz_answers_503_naming_what_is_down() -> None:
    from datetime import UTC, datetime

    from telegram.ext import ApplicationBuilder

    from bot.clock import ManualClock
    from bot.db.session import create_engine, make_sessionmaker
    from bot.protocols import ProtocolRegistry, default_schedules_dir
    from bot.services.context import ProtocolStore, ServiceContext, UnitSettings
    from bot.telegram.ops import OpsServer

    engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{_free_port()}/none")
    ctx = ServiceContext(
        sessions=make_sessionmaker(engine),
        messenger=None,  # type: ignore[arg-type]  # never used by the endpoints
        clock=ManualClock(datetime(2026, 12, 1, tzinfo=UTC)),
        unit=UnitSettings("U", "1", "2", None, None, (), "Europe/Paris"),
        protocols=ProtocolStore(ProtocolRegistry.from_dir(default_schedules_dir())),
    )
    application = ApplicationBuilder().token(TOKEN).build()  # never started
    ops = OpsServer(ctx, application, host="127.0.0.1", port=0, receiving=lambda: "stopped")
    await ops.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{ops.port}/healthz") as resp:
                assert resp.status == 503
                health = await resp.json()
            async with http.get(f"http://127.0.0.1:{ops.port}/metrics") as resp:
                assert (
                    resp.status == 200
                )  # counters are still served; the refresh failure is logged
    finally:
        await ops.stop()
        await engine.dispose()
    assert health["status"] == "failing"
    assert health["database"] != "ok"
    assert (health["application"], health["updates"]) == ("stopped", "stopped")
