"""Long polling that confirms updates to Telegram only once they have been handled.

Telegram forgets an update when a later ``getUpdates`` asks for a higher offset. PTB's own
``Updater`` asks again as soon as it has queued a batch, before the handlers ran, so a process
killed (SIGKILL, out of memory, power loss) loses every answer it had fetched but not yet saved:
the fault suite measured 29 of 30 answers lost in one burst. Here the next ``getUpdates`` waits
for ``update_queue.join()`` (PTB calls ``task_done`` once an update's handlers finished), so an
update is confirmed only after its transaction committed; a crash makes Telegram deliver the
unfinished batch again, and the handlers' ``update_id`` records make the redelivery harmless.

Processing itself is PTB's: updates go through ``application.update_queue``, the application's
update processor (chat ordering, concurrency) and its error handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

log = structlog.get_logger(__name__)

#: Seconds Telegram holds a getUpdates open when nothing arrives.
LONG_POLL = 10
BACKOFF_MAX = 30.0


class ConfirmingPoller:
    """``await start()`` after ``application.start()``; ``await stop()`` before stopping it."""

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self._application = application
        self._task: asyncio.Task[None] | None = None
        self._offset = 0

    @property
    def running(self) -> bool:
        """True while the polling loop is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Drop any webhook (Telegram refuses getUpdates while one is set) and start polling."""
        await self._application.bot.delete_webhook(drop_pending_updates=False)
        self._task = asyncio.create_task(self._loop(), name="confirming-poller")

    async def stop(self) -> None:
        """Stop polling; confirm what was handled, so a restart does not fetch it again."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._offset:
            with contextlib.suppress(NetworkError, Conflict):
                await self._application.bot.get_updates(offset=self._offset, limit=1, timeout=0)

    async def _loop(self) -> None:
        bot = self._application.bot
        queue = self._application.update_queue
        backoff = 1.0
        while True:
            try:
                updates = await bot.get_updates(
                    offset=self._offset, timeout=LONG_POLL, allowed_updates=Update.ALL_TYPES
                )
            except TimedOut:
                continue
            except InvalidToken:
                log.error("polling_stopped", error="InvalidToken")
                raise
            except RetryAfter as exc:
                retry = exc.retry_after
                delay = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
                log.warning("polling_retry_after", seconds=delay)
                await asyncio.sleep(delay)
                continue
            except (NetworkError, Conflict) as exc:
                log.warning("polling_failed", error=type(exc).__name__, retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = 1.0
            if not updates:
                continue
            for update in updates:
                await queue.put(update)
            await queue.join()  # handled (saved) before Telegram is told to forget them
            self._offset = updates[-1].update_id + 1
