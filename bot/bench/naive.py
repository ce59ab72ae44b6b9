"""The naive peer: one APScheduler 3 job per check-in in a SQLAlchemyJobStore — the usual way a
Telegram bot schedules messages — against the same fake server, in a subprocess with a hard time
limit (it can hang).

``python -m bench.naive --api URL --token T --jobs N --store FILE [--tuned]`` prints one JSON line.
Default settings are APScheduler's (``misfire_grace_time`` 1 s) and python-telegram-bot's ``Bot``
defaults; ``--tuned`` raises the grace to 300 s, coalesces and lifts the connection pool timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.bench.server import chat_of
from bot.bench.stall import StallMeter
from bot.telegram.sender import keyboard

BOT: Bot | None = None
TEXT = "Bonjour ! Voici votre suivi.\nSur une échelle de 0 à 10, quelle a été votre douleur ?"


async def send_checkin(chat_id: int, checkin_id: int) -> None:
    """The job: send the question with its 0-10 keyboard (like the bot's check-in)."""
    from bot.services.ports import Button, OutgoingMessage

    assert BOT is not None
    rows = tuple(
        tuple(Button(str(v), f"a:{checkin_id}:0:{v}") for v in half)
        for half in (range(6), range(6, 11))
    )
    await BOT.send_message(chat_id, TEXT, reply_markup=keyboard(OutgoingMessage(TEXT, rows)))


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    global BOT
    request = HTTPXRequest(pool_timeout=None) if args.tuned else HTTPXRequest()
    BOT = Bot(args.token, base_url=args.api, request=request)
    await BOT.initialize()
    defaults = (
        {"misfire_grace_time": 300, "coalesce": True, "max_instances": 1} if args.tuned else {}
    )
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{args.store}")},
        job_defaults=defaults,
        timezone=UTC,
    )
    outcome = {"executed": 0, "error": 0, "missed": 0}
    done = asyncio.Event()

    def listener(event: JobEvent) -> None:
        key = {EVENT_JOB_EXECUTED: "executed", EVENT_JOB_ERROR: "error", EVENT_JOB_MISSED: "missed"}
        outcome[key[event.code]] += 1
        if sum(outcome.values()) >= args.jobs:
            done.set()

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.start(paused=True)
    # Estimate how long adding takes, so every job is due at one instant after they are all in.
    probe = time.monotonic()
    due = datetime.now(UTC) + timedelta(hours=1)
    for i in range(1, min(args.jobs, 50) + 1):
        scheduler.add_job(send_checkin, "date", run_date=due, args=[chat_of(i), i], id=f"p{i}")
    per_job = (time.monotonic() - probe) / min(args.jobs, 50)
    scheduler.remove_all_jobs()
    due = datetime.now(UTC) + timedelta(seconds=2 + 1.5 * per_job * args.jobs)
    added = time.monotonic()
    for i in range(1, args.jobs + 1):
        scheduler.add_job(send_checkin, "date", run_date=due, args=[chat_of(i), i], id=f"j{i}")
    added_s = time.monotonic() - added
    scheduler.resume()
    meter = StallMeter()
    meter.start()
    wait = (due - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(wait, 0.0))
    started = time.time()
    await done.wait()
    elapsed = time.time() - started
    await meter.stop()
    scheduler.shutdown(wait=False)
    await BOT.shutdown()
    return {
        **outcome,
        "due_at": due.timestamp(),
        "add_seconds": added_s,
        "late_at_due": max(0.0, -wait),
        "elapsed": elapsed,
        "max_stall_ms": meter.max_stall * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of the subprocess: one JSON line on stdout."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--tuned", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_run(args))), flush=True)
    return 0


def run_naive(
    api: str, token: str, jobs: int, store: Path, *, tuned: bool, limit: float
) -> dict[str, Any]:
    """Run the peer in a subprocess, killed after ``limit`` seconds (then marked as hung)."""
    args = [sys.executable, "-m", "bot.bench.naive", "--api", api, "--token", token]
    args += ["--jobs", str(jobs), "--store", str(store)] + (["--tuned"] if tuned else [])
    started = time.time()
    try:
        done = subprocess.run(args, capture_output=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return {"hung": True, "limit_s": limit, "wall": time.time() - started}
    lines = done.stdout.decode().strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"crashed": True, "stderr": done.stderr.decode()[-500:]}
    result: dict[str, Any] = json.loads(lines[-1])
    result["hung"] = False
    return result


if __name__ == "__main__":
    raise SystemExit(main())
