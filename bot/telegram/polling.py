"""Long polling that confirms to Telegram only what is handled, and never dies for good.

Telegram forgets every update below the ``offset`` of a ``getUpdates`` call. PTB's ``Updater``
moves the offset as soon as it has queued a batch, before any handler ran, so a killed process
loses what it had fetched. Here the offset is :meth:`UpdateIntake.confirmable_offset`: the
lowest update not yet handled and committed (or set aside). A crash therefore makes Telegram
deliver the unfinished updates again, and the handlers recognise those already saved.

There is no batch barrier: the loop fetches again as soon as it has handed a batch to the
intake, so one slow chat never holds back the others. While an update is still in flight the
next ``getUpdates`` returns it again at once (the offset cannot pass it); the loop then waits
for some update to finish instead of spinning.

Raw JSON is fetched (``do_api_request``), not PTB's parsed ``get_updates``: one update PTB
cannot parse would make ``get_updates`` raise for the whole batch, log it at CRITICAL with the
patients' words, and stop PTB's poller for good. Here it becomes a dead letter.

The loop restarts after any failure with backoff; :attr:`ConfirmingPoller.problem` says why
while it does (``/healthz`` shows it): another process polling the same token (409 Conflict),
a refused token, or the network.

Only the holder of the polling lease polls (leadership.py), so processes sharing a database
never conflict. A 409 that still comes means a poller outside that lease (another deployment,
a developer's laptop with the production token): it is logged once as an error naming the
cause, ``/healthz`` reports it until :data:`CONFLICT_MEMORY` seconds pass without one, and the
backoff keeps growing meanwhile instead of taking the updates back every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from typing import Any

import structlog
from telegram import Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TimedOut
from telegram.ext import Application
from telegram.warnings import PTBUserWarning

from bot.metrics import POLLING_RESTARTS
from bot.telegram.intake import UpdateIntake

log = structlog.get_logger(__name__)

#: Seconds Telegram holds a getUpdates open when nothing arrives.
LONG_POLL = 10
BACKOFF_MAX = 30.0
#: How long to wait for an in-flight update to finish before asking Telegram again.
PROGRESS_WAIT = 1.0
#: Seconds without a 409 after which a conflict is over (the problem clears, logged once).
CONFLICT_MEMORY = 60.0
CONFLICT_CAUSE = "another process is polling this token"


class ConfirmingPoller:
    """``await start()`` after ``application.start()``; ``await stop()`` before stopping it."""

    def __init__(
        self, application: Application[Any, Any, Any, Any, Any, Any], intake: UpdateIntake
    ) -> None:
        self._application = application
        self._intake = intake
        self._task: asyncio.Task[None] | None = None
        self._fetched_up_to = -1
        self._stopping = False
        #: When the last 409 came (monotonic), while a conflict is remembered.
        self._conflict_at: float | None = None
        self._conflict_reason: str | None = None
        #: Why polling is not receiving right now (None while it is).
        self.problem: str | None = None

    @property
    def running(self) -> bool:
        """True while the polling loop is alive and receiving."""
        return self._task is not None and not self._task.done() and self.problem is None

    async def start(self) -> None:
        """Drop any webhook (Telegram refuses getUpdates while one is set) and start polling."""
        await self._application.bot.delete_webhook(drop_pending_updates=False)
        self._task = asyncio.create_task(self._loop(), name="confirming-poller")

    async def stop(self, *, drain: float = 5.0, confirm: bool = True) -> None:
        """Stop polling; let what is in flight finish, confirm what is done.

        ``confirm=False`` (the lease was lost) asks Telegram nothing more: another process
        polls now, and a getUpdates from here would end its long poll with a 409.
        """
        task, self._task = self._task, None
        if task is None:
            return
        # A flag as well as the cancel: aiohttp may turn a cancelled request into a timeout.
        self._stopping = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if not confirm:
            return
        await self._intake.drain(drain)
        if self._fetched_up_to >= 0:
            offset = self._intake.confirmable_offset(self._fetched_up_to)
            with contextlib.suppress(Exception):
                await self._fetch(offset, long_poll=0, limit=1)

    async def _fetch(
        self, offset: int, *, long_poll: int, limit: int = 100
    ) -> list[dict[str, Any]]:
        with warnings.catch_warnings():
            # do_api_request on purpose: raw JSON (module docstring), not PTB's parsed updates.
            warnings.filterwarnings(
                "ignore", message="Please use 'Bot.get", category=PTBUserWarning
            )
            result = await self._application.bot.do_api_request(
                "getUpdates",
                api_kwargs={
                    "offset": offset,
                    "timeout": long_poll,
                    "limit": limit,
                    "allowed_updates": list(Update.ALL_TYPES),
                },
                read_timeout=long_poll + 10,
            )
        return (
            [item for item in result if isinstance(item, dict)] if isinstance(result, list) else []
        )

    async def _loop(self) -> None:
        backoff = 1.0
        while not self._stopping:
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except TimedOut:
                continue
            except Conflict as exc:
                self._conflicted(exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            except RetryAfter as exc:
                retry = exc.retry_after
                delay = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
                self._failed("flood_control", delay)
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                reason = _reason(exc)
                self._failed(reason, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            if self._conflict_at is None:
                backoff = 1.0

    def _conflicted(self, exc: Conflict, retry_in: float) -> None:
        """A 409: logged once for the whole conflict, remembered for ``/healthz``."""
        reason = _reason(exc)
        if self._conflict_at is None:
            log.error(
                "polling_conflict",
                cause=CONFLICT_CAUSE if "webhook" not in reason else "a webhook is set",
                detail=reason,
                hint="one deployment per token: stop the other poller, or share this database "
                "(its processes take turns through the polling lease)",
                retry_in=retry_in,
            )
        self._conflict_at = time.monotonic()
        self._conflict_reason = self.problem = reason
        POLLING_RESTARTS.labels(reason="conflict").inc()

    def _failed(self, reason: str, retry_in: float) -> None:
        if self.problem != reason:
            log.error("polling_interrupted", reason=reason, retry_in=retry_in)
        self.problem = reason
        POLLING_RESTARTS.labels(reason=reason).inc()

    async def _poll_once(self) -> None:
        offset = self._intake.confirmable_offset(self._fetched_up_to)
        waiting = self._intake.in_flight > 0
        updates = await self._fetch(offset, long_poll=0 if waiting else LONG_POLL)
        if self._conflict_at is not None:
            if time.monotonic() - self._conflict_at >= CONFLICT_MEMORY:
                log.info("polling_conflict_over")
                self._conflict_at = None
                self.problem = None
            else:  # a network error meanwhile is over; the conflict is not
                self.problem = self._conflict_reason
        elif self.problem is not None:
            log.info("polling_resumed", after=self.problem)
            self.problem = None
        fresh = 0
        for raw in updates:
            update_id = raw.get("update_id")
            if isinstance(update_id, int) and update_id > self._fetched_up_to:
                self._fetched_up_to = update_id
                fresh += 1
            self._intake.submit(raw)
        if not fresh and self._intake.in_flight:
            await self._intake.wait_progress(PROGRESS_WAIT)


def _reason(exc: BaseException) -> str:
    """What ``/healthz`` says while polling is interrupted (an exception name, never content)."""
    if isinstance(exc, Conflict):
        if "webhook" in str(exc).lower():
            return "conflict: a webhook is set for this token (getUpdates refused)"
        return f"conflict: {CONFLICT_CAUSE}"
    if isinstance(exc, InvalidToken):
        return "token refused by Telegram"
    return f"error: {type(exc).__name__}"
