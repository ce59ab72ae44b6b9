"""The fake Telegram server of the benchmarks, in its own process (so it does not share the bot's
core), with many users added at once and a small bench-only control side.

``python -m bench.server --users 20000 --ready-file F`` writes ``api_url control_url`` into F.
The bench control side (another port) queues bursts of patient messages in one call and reports
what arrived with wall-clock time stamps, so the bench process can compute rates and latencies
without thousands of HTTP calls of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.sandbox.fake_api import FakeTelegramServer, SentMessage

#: Private chat of benchmark patient i (1-based).
CHAT_BASE = 10_000_000
STAFF_CHAT = -1009000000001
LABEL = re.compile(r"B-\d{7}")


def chat_of(index: int) -> int:
    """Telegram chat id of benchmark patient ``index``."""
    return CHAT_BASE + index


def label_of(index: int) -> str:
    """The unit's label of benchmark patient ``index``."""
    return f"B-{index:07d}"


class BenchServer(FakeTelegramServer):
    """The fake server, time-stamping every message it receives (wall clock, for other processes)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stamps: list[tuple[float, int, str]] = []
        self.queued: dict[int, float] = {}

    def _notify_change(self, message: SentMessage) -> None:
        if message.edits == 0:
            self.stamps.append((time.time(), message.chat_id, message.text or ""))
        super()._notify_change(message)


async def _serve(users: int, latency: float, enforce: bool, ready: Path) -> None:
    server = BenchServer(bot_token="123456:" + "B" * 35)
    server.latency = latency
    server.enforce_limits = enforce
    server.add_group(STAFF_CHAT, title="Staff")
    for index in range(1, users + 1):
        server.add_user(chat_of(index), first_name="Bench", language_code="fr")
    await server.start()

    async def burst(request: web.Request) -> web.Response:
        body = await request.json()
        now = time.time()
        for user_id, text in body["items"]:
            server.queued[int(user_id)] = now
            server.send_text(int(user_id), str(text))
        return web.json_response({"queued_at": now})

    async def stats(request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0"))
        marker = request.query.get("marker")
        per_chat: Counter[int] = Counter()
        first_reply: dict[int, float] = {}
        first_marked: dict[int, float] = {}
        staff: list[tuple[float, str]] = []
        for stamp, chat_id, text in server.stamps:
            if stamp < since:
                continue
            per_chat[chat_id] += 1
            first_reply.setdefault(chat_id, stamp)
            if chat_id == STAFF_CHAT:
                staff.append((stamp, text))
            elif marker and marker in text:
                first_marked.setdefault(chat_id, stamp)
        alert_latency = []
        for stamp, text in staff:
            found = LABEL.search(text)
            if found:
                user_id = chat_of(int(found.group()[2:]))
                if user_id in server.queued:
                    alert_latency.append(stamp - server.queued[user_id])
        marked_latency = [
            stamp - server.queued[uid]
            for uid, stamp in first_marked.items()
            if uid in server.queued
        ]
        replied = [
            first_reply[uid] - server.queued[uid] for uid in server.queued if uid in first_reply
        ]
        return web.json_response(
            {
                "per_chat": {str(k): v for k, v in per_chat.items()},
                "first": min((s for s, _, _ in server.stamps if s >= since), default=None),
                "last": max((s for s, _, _ in server.stamps if s >= since), default=None),
                "status_codes": server.stats()["status_codes"],
                "alert_latency": alert_latency,
                "alert_labels": [
                    found.group() for _, text in staff if (found := LABEL.search(text))
                ],
                "marked_latency": marked_latency,
                "replied": len(replied),
                "last_reply": max(
                    (first_reply[uid] for uid in server.queued if uid in first_reply), default=None
                ),
            }
        )

    control = web.Application()
    control.router.add_post("/burst", burst)
    control.router.add_get("/stats", stats)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    control_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    await asyncio.to_thread(
        ready.write_text, f"{server.api_base_url} {control_url}\n", encoding="utf-8"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await server.stop()


@dataclass
class ServerProcess:
    """A running bench server subprocess and its URLs."""

    process: subprocess.Popen[bytes]
    api_url: str
    control_url: str
    token: str = "123456:" + "B" * 35

    async def burst(self, items: list[tuple[int, str]]) -> float:
        """Queue one message per (user, text) at once; returns the server's time stamp."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.control_url}/burst", json={"items": items}) as resp,
        ):
            return float((await resp.json())["queued_at"])

    async def stats(self, since: float = 0.0, *, marker: str = "") -> dict[str, Any]:
        """What arrived since ``since`` (wall clock); ``marked_latency`` times, per patient chat,
        the first message containing ``marker`` (the safety advice) after that patient's burst."""
        timeout = aiohttp.ClientTimeout(total=120)
        params = {"since": str(since), "marker": marker}
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"{self.control_url}/stats", params=params) as resp,
        ):
            result: dict[str, Any] = await resp.json()
            return result

    def stop(self) -> None:
        """Terminate the subprocess."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(
    users: int, *, latency: float = 0.0, enforce_limits: bool = False
) -> ServerProcess:
    """Start ``python -m bench.server`` and wait until it listens. Its output goes to the file
    named by ``BENCH_LOG`` when set (the bench's log), so it never cuts into the bench's table."""
    ready = Path(tempfile.mkdtemp(prefix="cryo-bench-")) / "ready"
    args = [
        sys.executable,
        "-m",
        "bot.bench.server",
        "--users",
        str(users),
        "--ready-file",
        str(ready),
    ]
    args += ["--latency", str(latency)] + (["--enforce-limits"] if enforce_limits else [])
    log_path = os.environ.get("BENCH_LOG")
    if log_path:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=log)
    else:
        process = subprocess.Popen(args)
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the bench server did not start")
        time.sleep(0.05)
    api_url, control_url = ready.read_text().split()
    return ServerProcess(process, api_url, control_url)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the server subprocess."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--enforce-limits", action="store_true")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.users, args.latency, args.enforce_limits, args.ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
