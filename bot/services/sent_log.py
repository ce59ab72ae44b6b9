"""Owed messages Telegram has taken, recorded as sent in batches (one commit for many sends).

Recording each send in its own transaction cost a commit per message, two or three per reply:
under a burst most of the database's time went to them. Now a send is noted here at once and
written with the others noted within :data:`DELAY` in one transaction. Until then this process
treats the row as sent (never sends it again, and a later message of the chat may go), so the
only cost is the one owed messages already accept: a process killed in between sends those
messages again after its restart (at least once, never lost).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import structlog
from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import OwedMessage
from bot.db.priority import urgent_work
from bot.services.stopping import BetweenSteps

log = structlog.get_logger(__name__)

#: How long a send waits to be written with the next ones.
DELAY = 0.05
RETRY_MAX = 15.0


@dataclass
class _Sent:
    chat_id: int
    message_id: int
    at: datetime


@dataclass
class SentLog:
    """The sends not yet written; :meth:`note` them, :meth:`flush` writes them all."""

    _pending: dict[int, _Sent] = field(default_factory=dict)
    _per_chat: Counter[int] = field(default_factory=Counter)
    _task: asyncio.Task[None] | None = None
    _sessions: async_sessionmaker[AsyncSession] | None = None
    #: The background writer's loop: a stop waits for a batch under way (stopping.py).
    _writer: BetweenSteps = field(default_factory=BetweenSteps)

    def note(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        row_id: int,
        chat_id: int,
        message_id: int,
        at: datetime,
    ) -> None:
        """Telegram took owed row ``row_id``: write it soon (see the module docstring)."""
        if row_id not in self._pending:
            self._per_chat[chat_id] += 1
        self._pending[row_id] = _Sent(chat_id, message_id, at)
        self._sessions = sessions
        if not self._writer.stopping and (self._task is None or self._task.done()):
            with urgent_work(False):  # a background write, whoever's send started it
                self._task = asyncio.create_task(self._write_soon(), name="sent-log")

    def is_sent(self, row_id: int) -> bool:
        """True when Telegram took the row and it is not yet written."""
        return row_id in self._pending

    def pending_for(self, chat_id: int) -> int:
        """How many of the chat's sends are not yet written."""
        return self._per_chat.get(chat_id, 0)

    async def _write_soon(self) -> None:
        delay = DELAY
        while self._pending and not self._writer.stopping:
            await asyncio.sleep(delay)
            with self._writer.step():
                try:
                    await self.flush()
                except Exception as exc:  # the database is away: keep them, try again
                    log.warning("sent_log_retry", **_describe(exc), pending=len(self._pending))
                    delay = min(max(delay, 0.5) * 2, RETRY_MAX)
                else:
                    delay = DELAY

    async def flush(self) -> None:
        """Write every noted send now (in one transaction)."""
        if not self._pending or self._sessions is None:
            return
        batch = dict(self._pending)
        table = cast(Table, OwedMessage.__table__)
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(sent_at=bindparam("at"), message_id=bindparam("message"), claimed_by=None)
        )
        async with self._sessions.begin() as session:
            # One executemany (a row erased meanwhile simply matches nothing).
            await session.execute(
                statement,
                [
                    {"row_id": row_id, "at": sent.at, "message": sent.message_id}
                    for row_id, sent in batch.items()
                ],
            )
        for row_id, sent in batch.items():
            if self._pending.get(row_id) is sent:
                del self._pending[row_id]
                self._per_chat[sent.chat_id] -= 1
                if self._per_chat[sent.chat_id] <= 0:
                    del self._per_chat[sent.chat_id]

    async def close(self) -> None:
        """At shutdown: stop the background writer, then write what is still noted.

        A batch the writer is writing is finished, never cancelled half-way inside the
        database driver (rolled back there, it would be written again)."""
        task, self._task = self._task, None
        await self._writer.stop(task)
        try:
            await self.flush()
        except Exception as exc:
            log.warning("sent_log_unwritten", **_describe(exc), pending=len(self._pending))


def _describe(exc: Exception) -> dict[str, str | None]:
    """The error's class and the driver's error code (SQLITE_BUSY, a SQLSTATE): never its text,
    which may quote a row."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorname", None) or getattr(orig, "sqlstate", None)
    return {"error": type(exc).__name__, "code": code}
