"""Helpers shared by the fault and fuzz tests."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

from tests.harness import BotHarness


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
    """Move the clock, run a tick, and wait for the updates it led to, so the test reads a
    settled state."""
    await harness.advance_to(when)
    await harness.settle()
