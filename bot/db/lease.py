"""The polling lease: which of several bot processes on one database may call getUpdates.

Telegram allows one getUpdates consumer per token; a second one gets 409 Conflict and
terminates the first one's long poll. The lease is a PostgreSQL *session-level* advisory lock
held on a connection kept for it alone: it lasts exactly as long as that connection, so a
process killed with SIGKILL (or cut off from the database) gives it up at once, without any
expiry to wait for, and a follower's next :meth:`PollingLease.try_take` gets it.

The lock's key is derived from the schema and the bot id (the token's first part, not a
secret): two deployments in two schemas of one database, or two bots, never block each other.
On SQLite there is only one process: the lease is always taken.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

#: A lease check that gets no answer within this time counts as lost.
CHECK_TIMEOUT = 3.0

_KEY = "hashtextextended('cryo-followup:polling:' || current_schema() || ':' || :bot, 0)"
_TRY = text(f"SELECT pg_try_advisory_lock({_KEY})")
_RELEASE = text(f"SELECT pg_advisory_unlock({_KEY})")


class PollingLease:
    """``await try_take()`` until True; ``still_held()`` now and then; ``release()`` at stop."""

    def __init__(self, engine: AsyncEngine, *, bot_id: str) -> None:
        self._engine = engine
        self._bot_id = bot_id
        self._shared = engine.dialect.name == "postgresql"
        self._connection: AsyncConnection | None = None
        self.held = False

    async def try_take(self) -> bool:
        """Take the lease if nobody holds it; True when this process holds it now."""
        if not self._shared:
            self.held = True
            return True
        if self.held:
            return True
        try:
            connection = await self._open()
            async with asyncio.timeout(CHECK_TIMEOUT):
                taken = await connection.scalar(_TRY, {"bot": self._bot_id})
        except Exception:
            await self._drop()
            raise
        self.held = bool(taken)
        return self.held

    async def still_held(self) -> bool:
        """False once the lease's connection is gone (the database restarted, the network
        broke): the lock went with it, and another process may hold it already."""
        if not self._shared or not self.held:
            return self.held
        try:
            assert self._connection is not None
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self._connection.execute(text("SELECT 1"))
        except Exception:
            self.held = False
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        """Give the lease up (at stop) and close its connection."""
        if self._shared and self.held and self._connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await self._connection.execute(_RELEASE, {"bot": self._bot_id})
        self.held = False
        await self._drop()

    async def _open(self) -> AsyncConnection:
        if self._connection is None:
            connection = await self._engine.connect()
            # No transaction left open for hours: the lock belongs to the session, not to one.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            self._connection = connection
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()
