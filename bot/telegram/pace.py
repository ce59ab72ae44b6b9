"""Telegram's overall 30 messages a second (and a group's 20 a minute), shared by every bot
process of one PostgreSQL database instead of counted by each.

Three processes with a limiter each sent up to 3 × 29 messages a second and drew 1,852
answers 429 from Telegram in one wave. :class:`SharedPace` takes its turns from the
``send_pace`` rows (bot/db/queries/pace.py), in batches: a process reserves at once as many
slots as it has messages waiting (at most one second's worth), so a wave costs about one
database round trip per batch, not one per message. A reserved slot is a moment: its message
waits for it, and one missed by more than :data:`LATE` is dropped rather than sent in a bunch
with the next ones.

Private chats keep their per-process budget (ratelimit.py): a patient's messages come from the
process that claimed its check-in or handled its update, and the rare overlap is absorbed by
the per-chat retry after a 429. When the database does not answer, the process falls back to
its own pace and says so once in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

import structlog
from aiolimiter import AsyncLimiter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.db.queries.pace import hold_back, reserve_slots

log = structlog.get_logger(__name__)

#: The row of Telegram's overall budget.
OVERALL = "global"
#: A slot missed by more than this (seconds) is not used: it would bunch with the next ones.
LATE = 0.1
#: A batch reserves at most this many seconds' worth of slots: enough to save round trips,
#: little enough that a patient's reply does not queue behind another process's whole wave.
BATCH_SECONDS = 0.5
#: A reservation that gets no answer within this time falls back to the local pace.
RESERVE_TIMEOUT = 3.0


class SharedPace:
    """Turns under Telegram's budgets, taken from the database in batches."""

    def __init__(
        self, engine: AsyncEngine, *, rate: float, group_rate: float, group_burst: int
    ) -> None:
        self._engine = engine
        self._interval = 1.0 / rate
        self._batch = max(1, int(rate * BATCH_SECONDS))
        self._group_interval = 1.0 / group_rate
        self._group_tolerance = (group_burst - 1) * self._group_interval
        self._fallback = AsyncLimiter(rate, 1)
        self._slots: deque[float] = deque()
        self._waiting = 0
        self._reserving = asyncio.Lock()
        self._using = asyncio.Lock()  # one statement at a time on the connection
        self._connection: AsyncConnection | None = None
        self._degraded = False
        #: Round trips to the database so far (the tests read it: batches, not one per message).
        self.reservations = 0

    async def turn(self) -> None:
        """Wait for this process's next slot under the overall budget."""
        self._waiting += 1
        try:
            slot = await self._next_slot()
        finally:
            self._waiting -= 1
        if slot is None:
            await self._fallback.acquire()
            return
        delay = slot - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def group_turn(self, chat_id: int) -> bool:
        """Wait for the group's next slot (20 a minute, whichever process sends); False when
        the database did not answer (the caller then paces the group itself)."""
        waits = await self._reserve(
            f"chat:{chat_id}",
            count=1,
            interval=self._group_interval,
            tolerance=self._group_tolerance,
        )
        if waits is None:
            return False
        if waits[0] > 0:
            await asyncio.sleep(waits[0])
        return True

    async def hold_back(self, seconds: float) -> None:
        """Telegram asked every request to wait: every process waits, not only this one."""
        self._slots.clear()
        with contextlib.suppress(Exception):
            async with self._using, asyncio.timeout(RESERVE_TIMEOUT):
                await hold_back(await self._open(), name=OVERALL, seconds=seconds)

    async def close(self) -> None:
        """Close the connection kept for reservations."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _next_slot(self) -> float | None:
        while True:
            now = time.monotonic()
            while self._slots and self._slots[0] < now - LATE:
                self._slots.popleft()
            if self._slots:
                return self._slots.popleft()
            async with self._reserving:
                if self._slots:
                    continue  # another waiter reserved meanwhile
                count = min(max(self._waiting, 1), self._batch)
                waits = await self._reserve(OVERALL, count=count, interval=self._interval)
                if waits is None:
                    return None
                base = time.monotonic()
                self._slots.extend(base + wait for wait in waits)

    async def _reserve(
        self, name: str, *, count: int, interval: float, tolerance: float = 0.0
    ) -> list[float] | None:
        try:
            async with self._using, asyncio.timeout(RESERVE_TIMEOUT):
                waits = await reserve_slots(
                    await self._open(),
                    name=name,
                    count=count,
                    interval=interval,
                    tolerance=tolerance,
                )
        except Exception as exc:
            await self.close()
            if not self._degraded:
                log.warning("shared_pace_unavailable", error=type(exc).__name__)
            self._degraded = True
            return None
        self.reservations += 1
        if self._degraded:
            log.info("shared_pace_restored")
            self._degraded = False
        return waits

    async def _open(self) -> AsyncConnection:
        if self._connection is None:
            connection = await self._engine.connect()
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            self._connection = connection
        return self._connection
