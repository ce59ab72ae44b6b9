"""Background loops that a stop interrupts between their steps, never inside one.

A step is a database write (the sent log's batch, the inbox's clean-up). Cancelled while it
awaits the driver, SQLAlchemy rolls it back: the batch is written again, or the clean-up's
update ids are lost and handled again by the next process. So a stop cancels such a loop only
while it waits between steps, and otherwise lets the step under way finish and the loop end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class BetweenSteps:
    """``while not loop.stopping: ...; with loop.step(): await write()``; ``await loop.stop(task)``."""

    def __init__(self) -> None:
        self.stopping = False
        self._in_step = False

    @contextmanager
    def step(self) -> Iterator[None]:
        """Mark a step under way: a stop waits for its end instead of cancelling it."""
        self._in_step = True
        try:
            yield
        finally:
            self._in_step = False

    async def stop(self, task: asyncio.Task[None] | None) -> None:
        """Stop the loop ``task`` runs: at once between steps, after the step under way."""
        self.stopping = True
        if task is None:
            return
        if not self._in_step:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
