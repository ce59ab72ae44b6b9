"""Start-up time and resident memory of a fresh bot process (run by the scale scenario).

Measured from the first line of this process (imports included) until the bot polls and its first
dispatcher tick finished; memory is the resident set size then (psutil).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import asyncio  # noqa: E402 - imports are part of what is measured
import json  # noqa: E402
import os  # noqa: E402

import psutil  # noqa: E402

from bot.bench.scenarios import NOW, Database, bench_settings, start_bot  # noqa: E402
from bot.bench.server import ServerProcess  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.telegram.runtime import BotRuntime  # noqa: E402


async def _measure() -> dict[str, float]:
    db = Database(os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_DATABASE_SCHEMA"] or None)
    server = ServerProcess(
        process=None,  # type: ignore[arg-type]  # not ours to stop
        api_url=os.environ["BENCH_API"],
        control_url="",
        token=os.environ["BENCH_TOKEN"],
    )
    runtime = await BotRuntime.create(
        bench_settings(db, server),
        clock=ManualClock(NOW),
        token=server.token,
        base_url=server.api_url,
        base_file_url=server.api_url.removesuffix("/bot") + "/file/bot",
        require_approval=False,
        rate_limit=False,
    )
    await start_bot(runtime, wake=True)  # the real start-up: the bot's own first tick
    startup = time.perf_counter() - STARTED
    rss = psutil.Process().memory_info().rss / 2**20
    await runtime.stop()
    return {"startup_s": startup, "rss_mb": rss}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_measure())), flush=True)
