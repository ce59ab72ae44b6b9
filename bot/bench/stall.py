"""Longest event-loop stall, measured by a ticker task: a patient's reply waits at least that long
when the loop is busy with something else."""

from __future__ import annotations

import asyncio
import contextlib


class StallMeter:
    """Sleeps ``interval`` in a loop and keeps the worst overshoot."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.max_stall = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start ticking on the running loop."""
        self.max_stall = 0.0
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.max_stall = max(self.max_stall, loop.time() - before - self.interval)

    async def stop(self) -> float:
        """Stop and return the longest stall in seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.max_stall
