"""Running the fake server on its own, for the demo and the benchmarks:
``python -m bot.sandbox.fake_api --port 8081``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from bot.sandbox.fake_api.server import FakeTelegramServer

logger = logging.getLogger(__name__)


async def serve_forever(
    *,
    host: str = "127.0.0.1",
    port: int = 8081,
    bot_token: str = "123456:TEST",  # noqa: S107 - a fake token for a fake server
    bot_username: str = "cryo_followup_bot",
    enforce_limits: bool = False,
    latency: float = 0.0,
    ready_file: Path | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a server until SIGINT/SIGTERM (or ``stop`` is set), for the demo and benchmarks."""
    server = FakeTelegramServer(
        bot_token=bot_token, bot_username=bot_username, host=host, port=port
    )
    server.enforce_limits = enforce_limits
    server.latency = latency
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    await server.start()
    try:
        logger.info(
            "fake Telegram Bot API on %s (base_url %s, base_file_url %s, token %s)",
            server.url,
            server.api_base_url,
            server.file_base_url,
            server.bot_token,
        )
        if ready_file is not None:
            await asyncio.to_thread(ready_file.write_text, server.url + "\n", encoding="utf-8")
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await server.stop()
        logger.info("fake Telegram Bot API stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot.sandbox.fake_api --port 8081``."""
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server (loopback).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default="123456:TEST")
    parser.add_argument("--bot-username", default="cryo_followup_bot")
    parser.add_argument("--enforce-limits", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per call")
    parser.add_argument("--ready-file", type=Path, help="write the server URL here when ready")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(
        serve_forever(
            host=args.host,
            port=args.port,
            bot_token=args.token,
            bot_username=args.bot_username,
            enforce_limits=args.enforce_limits,
            latency=args.latency,
            ready_file=args.ready_file,
        )
    )
    return 0
