"""Wake-ups for the dispatcher on PTB's JobQueue (APScheduler 3, in memory only).

The JobQueue never holds a check-in: it only wakes :func:`bot.services.dispatch.tick` at the next
due time (read from the database) plus a slow safety tick, so nothing is lost on restart and
several processes never share a job store (apscheduler #129, #231).
"""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

import structlog
from telegram.ext import ContextTypes, Job, JobQueue

from bot.services import dispatch
from bot.services.context import ServiceContext

log = structlog.get_logger(__name__)

#: APScheduler's default grace is 1 s: a busy loop would silently skip wake-ups (docs/pitfalls.md).
JOB_KWARGS = {"misfire_grace_time": 300, "coalesce": True, "max_instances": 1}


class DispatcherWaker:
    """Keeps exactly one pending 'next due' wake-up, plus the safety tick."""

    def __init__(
        self, job_queue: JobQueue[Any], ctx: ServiceContext, *, safety_tick: timedelta
    ) -> None:
        self._queue = job_queue
        self._ctx = ctx
        self._safety_tick = safety_tick
        self._lock = asyncio.Lock()
        self._next: Job[Any] | None = None
        self._next_delay: float | None = None
        self.last_report: dispatch.TickReport | None = None

    def start(self) -> None:
        """Run a tick now and then every safety interval."""
        self._queue.run_repeating(
            self._run,
            interval=self._safety_tick.total_seconds(),
            name="dispatcher-safety-tick",
            job_kwargs=JOB_KWARGS,
        )
        # PTB documents that first=0 never fires (APScheduler drops the past start): tick now.
        self._schedule(0.01)

    def poke(self) -> None:
        """Something changed (a consent, 'send now'): look again very soon."""
        self._schedule(0.05)

    def _schedule(self, delay: float) -> None:
        now = asyncio.get_running_loop().time()
        pending = self._next is not None and not self._next.removed
        if pending and self._next_delay is not None and now <= self._next_delay:
            if self._next_delay <= now + delay:
                return
            assert self._next is not None
            self._next.schedule_removal()
        self._next_delay = now + delay
        self._next = self._queue.run_once(
            self._run, when=delay, name="dispatcher-next-due", job_kwargs=JOB_KWARGS
        )

    async def _run(self, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if self._lock.locked():
            self._schedule(0.2)
            return
        async with self._lock:
            try:
                self.last_report = await dispatch.tick(self._ctx)
                upcoming = await dispatch.next_wakeup(self._ctx)
            except Exception:
                log.exception("dispatcher_tick_failed")
                self._schedule(5.0)
                return
        if upcoming is not None:
            delay = self._ctx.clock.real_seconds_until(upcoming)
            if math.isfinite(delay) and delay < self._safety_tick.total_seconds():
                self._schedule(max(delay, 0.01))
