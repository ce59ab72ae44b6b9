"""Urgent work first to the database: a priority gate the conversation's transactions pass.

The intake marks the handling of an urgent update (a red flag, a pain at an urgent threshold)
with :func:`urgent_work`; everything it does in that task (its transaction, the owed rows it
sends, the staff card) then passes ahead of ordinary work wherever work waits:

- :class:`PriorityGate`: a counting semaphore whose urgent waiters are served first (in
  arrival order among themselves). The conversation takes one before its transaction, so at
  most ``capacity`` ordinary turns hold connections and an urgent one never queues behind
  thousands of them in the pool.

Tried and left out: SQLite's one writer taken in such a gate (instead of SQLite's busy handler,
which sleeps up to 100 ms between tries). Under load the holder's statements waited for a
crowded event loop, so the writer was held longer than it slept: 25-30 % fewer answers a second
in the bench.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

_urgent: contextvars.ContextVar[bool] = contextvars.ContextVar("urgent_work", default=False)


@contextmanager
def urgent_work(urgent: bool = True) -> Iterator[None]:
    """Mark what runs inside (and the tasks it starts) as urgent."""
    token = _urgent.set(urgent)
    try:
        yield
    finally:
        _urgent.reset(token)


def is_urgent() -> bool:
    """True inside :func:`urgent_work`."""
    return _urgent.get()


class PriorityGate:
    """At most ``capacity`` holders; urgent waiters are let in before ordinary ones."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """How many are waiting (for metrics and tests)."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a place (urgent work first)."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (0 if is_urgent() else 1, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # we were given the place as we were cancelled: pass it on
            raise

    def release(self) -> None:
        """Give the place to the most urgent waiter still waiting."""
        while self._waiters:
            _rank, _order, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """``async with gate.slot():`` hold a place for the block."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()
