"""A poller outside the polling lease (another deployment with the same token): Telegram answers
409 Conflict to one of the two long polls each time the other asks. The bot says so once, as an
error naming the cause, and ``/healthz`` shows it; it used to log an error at every other poll
(each conflict followed by a "resumed")."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp

from bot.logs import configure_logging
from bot.telegram.ops import OpsServer
from tests.harness import BotHarness

CAUSE = "another process is polling this token"


async def test_a_poller_outside_the_lease_is_one_clear_error_and_shows_on_healthz(
    harness: BotHarness,
) -> None:
    stream = io.StringIO()
    configure_logging("json", "WARNING", stream=stream)
    runtime = harness.runtime
    assert runtime is not None
    server = harness.server
    ops = OpsServer(
        runtime.ctx,
        runtime.application,
        host="127.0.0.1",
        port=0,
        receiving=lambda: runtime.receiving_problem,
        polling_role=lambda: runtime.polling_role,
    )
    await ops.start()
    url = f"{server.api_base_url}{server.bot_token}/getUpdates"

    def conflicts() -> int:
        return server.request_log.count(("getUpdates", 409))

    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(60):
                while conflicts() < 3:  # the bot's long poll, ended by each of ours
                    async with http.get(url, params={"timeout": "0"}) as answer:
                        await answer.read()
                    await asyncio.sleep(0.2)
            async with http.get(f"http://127.0.0.1:{ops.port}/healthz") as answer:
                health = await answer.json()
                status = answer.status
    finally:
        await ops.stop()

    assert runtime.receiving_problem == f"conflict: {CAUSE}"
    assert (status, health["updates"], health["polling"]) == (503, f"conflict: {CAUSE}", "leader")
    events = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    said = [event for event in events if event["event"] == "polling_conflict"]
    assert [(event["level"], event["cause"]) for event in said] == [("error", CAUSE)], events
    assert not [event for event in events if event["event"] == "polling_interrupted"], events
