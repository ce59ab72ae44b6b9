"""Telegram's overall 30 messages a second (and a group's 20 a minute), shared by every bot
process of one PostgreSQL database instead of counted by each.

Three processes with a limiter each sent up to 3 × 29 messages a second and drew 1,852
answers 429 from Telegram in one wave. Together they now send 29 a second, evenly spaced, with
no burst: any second holds at most 30 messages, and Telegram's own bucket keeps its slack for
the network's jitter (a burst of 29 after a quiet moment used it up, and drew a few 429s). :class:`SharedPace` takes its turns from the
``send_pace`` rows (bot/db/queries/pace.py), in batches: a process reserves at once as many
slots as it has messages waiting (at most :data:`BATCH_SECONDS` worth), so a wave costs one
database round trip per batch, not one per message. Each slot of a batch is handed to one
waiting message, which waits for its moment: no slot is left over for a message that comes
later (it would be late, and bunch with the next ones), and none is dropped (a first version
dropped slots its messages reached late on a busy event loop, and a process restarted into a
backlog sent two messages a second).

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
#: A batch reserves at most this many seconds' worth of slots: enough to save round trips,
#: little enough that a patient's reply does not queue behind another process's whole wave.
BATCH_SECONDS = 0.5
#: The next batch is reserved this long (seconds) before the last slot of the current one.
RESERVE_AHEAD = 0.1
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
        #: Messages waiting for a slot: each future gets its moment (None: pace locally).
        self._queue: deque[asyncio.Future[float | None]] = deque()
        self._reserver: asyncio.Task[None] | None = None
        self._using = asyncio.Lock()  # one statement at a time on the connection
        self._connection: AsyncConnection | None = None
        self._degraded = False
        #: Round trips to the database so far (the tests read it: batches, not one per message).
        self.reservations = 0

    async def turn(self) -> None:
        """Wait for this process's next slot under the overall budget."""
        slot: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self._queue.append(slot)
        if self._reserver is None or self._reserver.done():
            self._reserver = asyncio.create_task(self._reserve_for_queue(), name="shared-pace")
        moment = await slot
        if moment is None:
            await self._fallback.acquire()
            return
        delay = moment - time.monotonic()
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
        with contextlib.suppress(Exception):
            async with self._using, asyncio.timeout(RESERVE_TIMEOUT):
                await hold_back(await self._open(), name=OVERALL, seconds=seconds)

    async def close(self) -> None:
        """Stop reserving and close the connection kept for it."""
        reserver, self._reserver = self._reserver, None
        if reserver is not None and not reserver.done():
            reserver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reserver
        await self._drop_connection()

    async def _reserve_for_queue(self) -> None:
        """Reserve a batch for the messages waiting, hand each its slot, until none waits."""
        batch: list[asyncio.Future[float | None]] = []
        try:
            while self._queue:
                while self._queue and len(batch) < self._batch:
                    waiter = self._queue.popleft()
                    if not waiter.done():  # not cancelled meanwhile
                        batch.append(waiter)
                if not batch:
                    continue
                waits = await self._reserve(OVERALL, count=len(batch), interval=self._interval)
                base = time.monotonic()
                for index, waiter in enumerate(batch):
                    if not waiter.done():
                        waiter.set_result(None if waits is None else base + waits[index])
                batch = []
                if waits and self._queue:
                    # The next batch only when this one is nearly out: reserving the whole
                    # backlog at once would make the other processes' messages wait behind it.
                    ahead = base + waits[-1] - time.monotonic() - RESERVE_AHEAD
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        finally:  # cancelled at shutdown: nobody is left waiting for a slot
            for waiter in (*batch, *self._queue):
                if not waiter.done():
                    waiter.set_result(None)
            self._queue.clear()

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
            await self._drop_connection()
            if not self._degraded:
                log.warning("shared_pace_unavailable", error=type(exc).__name__)
            self._degraded = True
            return None
        self.reservations += 1
        if self._degraded:
            log.info("shared_pace_restored")
            self._degraded = False
        return waits

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _open(self) -> AsyncConnection:
        if self._connection is None:
            connection = await self._engine.connect()
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            self._connection = connection
        return self._connection
