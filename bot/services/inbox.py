"""The polling inbox: an update is stored before it is confirmed to Telegram, and forgotten
once handled.

Why: Telegram's getUpdates returns at most the 100 updates after the lowest one not yet
confirmed. Confirming only what was handled kept every update safe, but during a burst the
101st waited for the first 100 to be handled, and a red flag behind 900 ordinary replies
waited for all of them. Now each fetched batch is written in one statement and confirmed by
the next getUpdates, so the poller sees every update as soon as Telegram has it (and the
urgent lane can act on it). Nothing is only in memory: a process killed before handling a
kept update leaves its row, and whoever polls next (this process after a restart, or the
follower that takes the polling lease) handles it first. A row whose update was handled but
not yet forgotten when the process died is handled again and recognised as done
(``processed_updates``), as any redelivery is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.db.queries import inbox as queries
from bot.services.context import ServiceContext
from bot.services.dead_letters import raw_json


class Inbox:
    """The inbox of one bot (``bot_id``: the token's first part)."""

    def __init__(self, ctx: ServiceContext, *, bot_id: int) -> None:
        self._ctx = ctx
        self._bot_id = bot_id

    async def keep(self, updates: Sequence[dict[str, Any]]) -> None:
        """Store a fetched batch (one statement, one commit); raises when the database is away
        (the caller then confirms those updates only once handled, as before)."""
        pairs = [
            (raw["update_id"], raw_json(raw))
            for raw in updates
            if isinstance(raw.get("update_id"), int)
        ]
        if not pairs:
            return
        async with self._ctx.sessions.begin() as session:
            await queries.keep(
                session, bot_id=self._bot_id, updates=pairs, now=self._ctx.clock.wall_now()
            )

    async def waiting(self) -> list[dict[str, Any]]:
        """The updates kept and not handled (a previous process's, at start), oldest first."""
        async with self._ctx.sessions() as session:
            rows = await queries.waiting(session, bot_id=self._bot_id)
        updates: list[dict[str, Any]] = []
        for _update_id, raw in rows:
            value = json.loads(raw)
            if isinstance(value, dict):
                updates.append(value)
        return updates

    async def forget(self, update_ids: Sequence[int]) -> None:
        """Remove handled updates."""
        if update_ids:
            async with self._ctx.sessions.begin() as session:
                await queries.forget(session, bot_id=self._bot_id, update_ids=update_ids)
