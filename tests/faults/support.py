"""Helpers shared by the fault and fuzz tests."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

from tests.harness import BotHarness


async def settle(harness: BotHarness, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Wait until every update queued at the fake server was fetched, confirmed and handled.

    The server drops an update once a later getUpdates confirms it, and PTB polls again only
    after putting what it fetched in its queue; ``update_queue.join()`` then waits for the
    handlers (PTB calls ``task_done`` after each update is processed).
    """
    assert harness.runtime is not None
    application = harness.runtime.application
    async with asyncio.timeout(timeout):
        while harness.server.stats()["pending_updates"]:  # noqa: ASYNC110 - the server has no event for it
            await asyncio.sleep(0.005)
        await application.update_queue.join()


class ErrorRecorder:
    """An extra PTB error handler (public API) that keeps the type of every handler error."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.messages: list[str] = []

    async def __call__(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Record the error type and update id (never the update's content)."""
        update_id = update.update_id if isinstance(update, Update) else None
        self.errors.append(f"{type(context.error).__name__} (update {update_id})")
        self.messages.append(str(context.error))

    def attach(self, harness: BotHarness) -> ErrorRecorder:
        """Observe the running bot's application."""
        assert harness.runtime is not None
        harness.runtime.application.add_error_handler(self)
        return self


def describe(rows: Any) -> list[tuple[Any, ...]]:
    """Rows as plain tuples, for snapshot comparisons."""
    return [tuple(row) for row in rows]


async def advance(harness: BotHarness, when: Any) -> None:
    """Move the clock, run a tick, and wait for any tick the bot's own waker started meanwhile
    (a consent or a retry pokes it), so the test reads a settled state."""
    await harness.advance_to(when)
    assert harness.runtime is not None and harness.runtime.waker is not None
    lock = harness.runtime.waker._lock
    await asyncio.sleep(0.1)  # a poke schedules its tick 50 ms later
    while lock.locked():  # noqa: ASYNC110 - waiting for another task's lock to be released
        await asyncio.sleep(0.005)
    await settle(harness)
