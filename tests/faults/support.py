"""Helpers shared by the fault and fuzz tests."""

from __future__ import annotations

import asyncio
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


class CuttableProxy:
    """A TCP proxy on loopback in front of a real server (PostgreSQL here) that a test can cut:
    open connections are closed and new ones refused until :meth:`restore` — the database gone
    for a while, as the bot sees it, without stopping the server other tests share."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.cut_off = False
        self.port = 0

    async def start(self) -> CuttableProxy:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        """Close everything."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """The database disappears: close every connection, refuse new ones."""
        self.cut_off = True
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def restore(self) -> None:
        """The database is back."""
        self.cut_off = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)
