"""Long polling that confirms to Telegram only what is handled, and never dies for good.

Telegram forgets every update below the ``offset`` of a ``getUpdates`` call. PTB's ``Updater``
moves the offset as soon as it has queued a batch, before any handler ran, so a killed process
loses what it had fetched. Here each fetched batch goes to the intake at once (an urgent
update starts right away) and to the inbox (bot/services/inbox.py: one statement); the offset
is :meth:`UpdateIntake.confirmable_offset`, past everything handled or kept. A crash leaves
the kept updates in the inbox, handled first by whoever polls next; an update the inbox could
not store (the database is away) is confirmed only once handled, so Telegram delivers it
again after a crash.

There is no batch barrier, and no window: getUpdates returns at most 100 updates past the
offset, and with the inbox the offset follows the fetch, so an update behind a burst of a
thousand is fetched as soon as Telegram has it, not once the thousand are handled. Without the
inbox (the database away) an update still in flight comes back in the next ``getUpdates``; the
loop then waits for some update to finish instead of spinning. At most :data:`MAX_HELD` updates
wait in memory; beyond that the loop waits for them to be handled.

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

from bot.db.priority import urgent_work
from bot.metrics import POLLING_RESTARTS
from bot.services.inbox import Inbox
from bot.services.stopping import BetweenSteps
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
#: Updates fetched and not yet handled beyond which polling waits (memory bound).
MAX_HELD = 5000
#: Seconds between removals of handled updates from the inbox (one statement each).
FORGET_EVERY = 0.5


class ConfirmingPoller:
    """``await start()`` after ``application.start()``; ``await stop()`` before stopping it."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        intake: UpdateIntake,
        inbox: Inbox | None = None,
    ) -> None:
        self._application = application
        self._intake = intake
        self._inbox = inbox
        #: The inbox rows a previous process left are handed to the intake before polling.
        self._restored = inbox is None
        self._task: asyncio.Task[None] | None = None
        self._forgetter: asyncio.Task[None] | None = None
        self._fetched_up_to = -1
        self._stopping = False
        #: The inbox clean-up's loop: a stop waits for a DELETE under way (stopping.py).
        self._forget_steps = BetweenSteps()
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
        if self._inbox is not None:
            self._forgetter = asyncio.create_task(self._forget_loop(), name="inbox-forget")

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
            await self._stop_forgetting(forget=False)
            return
        await self._intake.drain(drain)
        await self._stop_forgetting(forget=True)
        if self._fetched_up_to >= 0:
            offset = self._intake.confirmable_offset(self._fetched_up_to)
            with contextlib.suppress(Exception):
                await self._fetch(offset, long_poll=0, limit=1)

    async def _stop_forgetting(self, *, forget: bool) -> None:
        forgetter, self._forgetter = self._forgetter, None
        if forgetter is None:
            return
        await self._forget_steps.stop(forgetter)
        if forget:  # what is done now need not be handled again by the next process
            await self._forget_done()

    async def _forget_loop(self) -> None:
        while not self._forget_steps.stopping:
            await asyncio.sleep(FORGET_EVERY)
            with self._forget_steps.step():
                await self._forget_done()

    async def _forget_done(self) -> None:
        assert self._inbox is not None
        done = self._intake.take_forgettable()
        if not done:
            return
        try:
            await self._inbox.forget(done)
        except Exception as exc:  # the database is away: tried again later, nothing lost
            self._intake.give_back_forgettable(done)
            log.warning("inbox_forget_failed", error=type(exc).__name__, updates=len(done))
        except asyncio.CancelledError:  # not removed: the next try (or the stop's) removes them
            self._intake.give_back_forgettable(done)
            raise

    async def _restore(self) -> None:
        """Hand the intake what a previous process kept and did not handle (oldest first)."""
        assert self._inbox is not None
        kept = await self._inbox.waiting()
        for raw in kept:
            update_id = raw.get("update_id")
            if isinstance(update_id, int):
                self._fetched_up_to = max(self._fetched_up_to, update_id)
            self._intake.submit(raw, kept=True)
        if kept:
            log.info("inbox_restored", updates=len(kept))
        self._restored = True

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
        if not self._restored:
            await self._restore()
        if self._intake.in_flight >= MAX_HELD:
            await self._intake.wait_progress(PROGRESS_WAIT)
            return
        offset = self._intake.confirmable_offset(self._fetched_up_to)
        waiting = self._intake.unkept_in_flight > 0
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
        fresh: list[dict[str, Any]] = []
        for raw in updates:
            update_id = raw.get("update_id")
            if isinstance(update_id, int) and update_id > self._fetched_up_to:
                self._fetched_up_to = update_id
                fresh.append(raw)
        # The batch's INSERT is scheduled before its lanes, so it reaches the database ahead of
        # their turns (and, as urgent work, ahead of any ordinary writer): the next getUpdates,
        # which may hold an urgent update, waits for this batch to be stored.
        keeping = (
            asyncio.ensure_future(self._keep(fresh)) if fresh and self._inbox is not None else None
        )
        try:
            for raw in updates:
                self._intake.submit(raw)
        finally:
            if keeping is not None:
                await keeping  # marks the batch kept, after every update of it is submitted
        if not fresh and self._intake.unkept_in_flight:
            await self._intake.wait_progress(PROGRESS_WAIT)

    async def _keep(self, fresh: list[dict[str, Any]]) -> None:
        """Store the batch so the next getUpdates confirms it; on failure it stays unconfirmed
        until handled (the database is away: handling waits for it too)."""
        assert self._inbox is not None
        try:
            # First to the database: every later urgent update waits for this batch to be
            # confirmed before getUpdates can return it (bot.db.priority).
            with urgent_work():
                await self._inbox.keep(fresh)
        except Exception as exc:
            log.warning("inbox_keep_failed", error=type(exc).__name__, updates=len(fresh))
            return
        self._intake.mark_kept([raw["update_id"] for raw in fresh])


def _reason(exc: BaseException) -> str:
    """What ``/healthz`` says while polling is interrupted (an exception name, never content)."""
    if isinstance(exc, Conflict):
        if "webhook" in str(exc).lower():
            return "conflict: a webhook is set for this token (getUpdates refused)"
        return f"conflict: {CONFLICT_CAUSE}"
    if isinstance(exc, InvalidToken):
        return "token refused by Telegram"
    return f"error: {type(exc).__name__}"
