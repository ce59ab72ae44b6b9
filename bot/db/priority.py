"""Urgent work first to the database: a priority gate the conversation's transactions pass.

The intake marks the handling of an urgent update (a red flag, a pain at an urgent threshold)
with :func:`urgent_work`; everything it does in that task (its transaction, the owed rows it
sends, the staff card) then passes ahead of ordinary work wherever work waits:

- :class:`PriorityGate`: a counting semaphore whose urgent waiters are served first (in
  arrival order among themselves), and which lets no ordinary waiter in while an urgent
  holder is inside. The conversation takes one before its transaction, so at most
  ``capacity`` ordinary turns hold connections, an urgent one never queues behind thousands of
  them in the pool, and while it runs the event loop is not crowded with new ordinary turns.
- SQLite's one writer is such a gate too (:mod:`bot.db.write_gate`), taken at a
  transaction's first write instead of SQLite's busy handler, which sleeps up to 100 ms
  between tries. It is advisory (a writer waits for it at most 2 s): two earlier hard
  versions turned hidden waits into a 30 s stop and a test hung for minutes.
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
        #: Urgent holders now: while there is one, no ordinary waiter is let in (the few
        #: places left go to it, and the event loop is not crowded with new ordinary work).
        self._urgent_holders = 0

    @property
    def waiting(self) -> int:
        """How many are waiting (for metrics and tests)."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a place (urgent work first)."""
        urgent = is_urgent()
        if self._free > 0 and not self._waiters and (urgent or not self._urgent_holders):
            self._take(urgent)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (0 if urgent else 1, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(urgent=urgent)  # given the place as we were cancelled: pass it on
            raise

    def _take(self, urgent: bool) -> None:
        self._free -= 1
        self._urgent_holders += urgent

    def release(self, *, urgent: bool = False) -> None:
        """Give the place back: to the most urgent waiter, an ordinary one only while no
        urgent holder is inside."""
        self._urgent_holders -= urgent
        self._free += 1
        self._admit()

    def _admit(self) -> None:
        while self._free > 0 and self._waiters:
            rank, _order, future = self._waiters[0]
            if rank and self._urgent_holders:
                return  # ordinary waiters wait until the urgent holders are out
            heapq.heappop(self._waiters)
            if not future.done():
                self._take(urgent=not rank)
                future.set_result(None)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """``async with gate.slot():`` hold a place for the block."""
        urgent = is_urgent()
        await self.acquire()
        try:
            yield
        finally:
            self.release(urgent=urgent)
