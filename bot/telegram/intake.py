"""Updates in, at least once: per-chat lanes, retries while the database is down, dead letters.

Polling and the webhook both hand Telegram's raw update JSON to :class:`UpdateIntake`, and
both tell Telegram an update is done only once :meth:`UpdateIntake.submit`'s future says so:
the handlers ran and their transaction committed, or the update was set aside as a dead letter.

- **Lanes.** One chat's updates run one after the other, in arrival order (a patient's second
  message must never overtake the first); different chats run at the same time, so a slow chat
  (a staff group held back by Telegram's 20 messages a minute) delays nobody else.
- **Urgent first.** The ``urgency`` hook reads each update as it arrives (a red flag, a score
  at an urgent threshold: ``urgency.py``, no query). An urgent update's lane runs ahead of the
  ordinary ones: it takes no ordinary slot, and everything it does waits first in line for the
  database (:mod:`bot.db.priority`): its answer is saved, then its safety advice and staff card
  go, ahead of the ordinary replies queued before it. The updates its chat sent before it run
  first, urgent too: nothing is reordered within a chat.
- **Retries.** A handler that failed because the database or the network is unavailable is run
  again with backoff, for as long as it takes; it is not confirmed meanwhile. Any other failure
  is tried :data:`MAX_TRIES` times, then the update becomes a dead letter.
- **Dead letters.** An update that cannot be parsed (a Bot API field newer than our
  python-telegram-bot) or that fails every try is stored in ``dead_letters`` with its raw JSON
  and counted in a metric; intake goes on. Its content is never logged.
- **Offset.** :meth:`UpdateIntake.confirmable_offset` is the lowest update id neither done
  nor kept: polling stores each fetched batch in its inbox (bot/services/inbox.py) and marks
  it :meth:`UpdateIntake.mark_kept`, so Telegram may forget it before it is handled; an update
  the inbox could not store (the database is away) holds the offset until it is done. A crash
  loses nothing either way.

python-telegram-bot's error handlers record a handler's exception here (:func:`record_failure`),
because ``Application.process_update`` swallows it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from telegram import Update
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot.db.priority import urgent_work
from bot.metrics import DEAD_LETTERS, UPDATES_RETRIED

log = structlog.get_logger(__name__)

#: Tries of an update whose handler keeps failing for a reason other than an outage.
MAX_TRIES = 3
RETRY_BASE = 0.5
RETRY_MAX = 15.0
#: Update ids remembered as done, to skip a redelivery without a database round trip.
RECENT = 10_000


class Outcome(StrEnum):
    """How an update left the intake (both mean: confirm it to Telegram)."""

    HANDLED = "handled"
    DEAD_LETTER = "dead_letter"


@dataclass
class _Attempt:
    """The error a handler raised during one run of one update, if any."""

    error: BaseException | None = None


_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "intake_attempt", default=None
)


def record_failure(error: BaseException | None) -> None:
    """Called by the application's error handler: the update being run failed with ``error``."""
    attempt = _attempt.get()
    if attempt is not None and attempt.error is None:
        attempt.error = error


def is_outage(error: BaseException) -> bool:
    """A failure that says nothing about the update: the database or the network is away."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, ConnectionError | TimeoutError | OSError | NetworkError | TimedOut)


@dataclass
class _Item:
    update_id: int
    raw: dict[str, Any]
    #: Parsed by python-telegram-bot when its lane runs it (None: not yet, or unreadable).
    update: Update | None
    done: asyncio.Future[Outcome]
    urgent: bool = False
    parsed: bool = False
    #: Stored in the polling inbox: may be confirmed to Telegram before it is done.
    kept: bool = False


@dataclass
class _Lane:
    queue: deque[_Item] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    #: Urgent updates queued in this lane: while there is one, the updates before it (same
    #: chat, so they must go first) run as urgent too.
    urgent: int = 0


DeadLetterSink = Callable[[int, dict[str, Any], str, int], Awaitable[None]]
GiveUp = Callable[[Update], Awaitable[None]]
Urgency = Callable[[dict[str, Any]], bool]


class UpdateIntake:
    """Runs updates through the application's handlers; see the module docstring."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        *,
        dead_letter: DeadLetterSink,
        on_give_up: GiveUp | None = None,
        urgency: Urgency | None = None,
        max_concurrent: int = 64,
    ) -> None:
        self._application = application
        self._dead_letter = dead_letter
        self._on_give_up = on_give_up
        self._urgency = urgency
        self._lanes: dict[object, _Lane] = {}
        self._pending: dict[int, _Item] = {}
        self._recently_done: set[int] = set()
        self._done_order: deque[int] = deque()
        #: Kept updates now done, whose inbox rows may go (:meth:`take_forgettable`).
        self._forgettable: list[int] = []
        self._slots = asyncio.Semaphore(max_concurrent)
        self._progress = asyncio.Event()
        self._closed = False
        #: True while some update waits for the database or the network to come back.
        self.stalled = False

    # ------------------------------------------------------------------------- submitting

    def submit(self, raw: dict[str, Any], *, kept: bool = False) -> asyncio.Future[Outcome]:
        """Queue one update (as Telegram sent it); the future resolves once it is done.

        ``kept``: it is already in the polling inbox (one a previous process left there).
        A second delivery of an update still in flight gets the same future, so a webhook
        retry or an overlapping poll never runs it twice at once.
        """
        update_id = raw.get("update_id")
        loop = asyncio.get_running_loop()
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            future: asyncio.Future[Outcome] = loop.create_future()
            future.set_exception(ValueError("an update without an integer update_id"))
            return future
        if (pending := self._pending.get(update_id)) is not None:
            pending.kept = pending.kept or kept
            return pending.done
        if update_id in self._recently_done:
            if kept:  # handled here already (the lease came back to this process): drop the row
                self._forgettable.append(update_id)
            # Done in this process (a poll overlapping a slow update fetches it again); the
            # handlers would recognise it too (processed_updates): this only saves the work.
            future = loop.create_future()
            future.set_result(Outcome.HANDLED)
            return future
        item = _Item(update_id, raw, None, loop.create_future(), kept=kept)
        key = raw_lane_key(raw)
        if key is None:  # an update of a rarer kind: python-telegram-bot says whose it is
            self._ensure_parsed(item)
            key = self._lane_key(item)
        if self._urgency is not None:
            item.urgent = self._urgency(raw)
        self._pending[update_id] = item
        lane = self._lanes.setdefault(key, _Lane())
        lane.queue.append(item)
        if item.urgent:
            lane.urgent += 1
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._run_lane(key, lane), name=f"lane-{key}")
        return item.done

    def confirmable_offset(self, fetched_up_to: int) -> int:
        """The getUpdates offset that confirms only what is done or kept (``fetched_up_to`` =
        the highest update id fetched so far)."""
        unkept = [update_id for update_id, item in self._pending.items() if not item.kept]
        if unkept:
            return min(unkept)
        return fetched_up_to + 1

    def mark_kept(self, update_ids: list[int]) -> None:
        """The inbox stored these updates: they may be confirmed. One already done meanwhile
        (an urgent one is handled while its batch is being stored) is forgettable at once."""
        for update_id in update_ids:
            item = self._pending.get(update_id)
            if item is not None:
                item.kept = True
            else:
                self._forgettable.append(update_id)

    def take_forgettable(self) -> list[int]:
        """The kept updates done since the last call (their inbox rows may be removed)."""
        taken, self._forgettable = self._forgettable, []
        return taken

    def give_back_forgettable(self, update_ids: list[int]) -> None:
        """Rows the inbox could not remove yet (the database is away): tried again later."""
        self._forgettable.extend(update_ids)

    @property
    def in_flight(self) -> int:
        """Updates received and not yet done."""
        return len(self._pending)

    @property
    def unkept_in_flight(self) -> int:
        """Updates received, not done and not in the inbox: they hold the offset back."""
        return sum(1 for item in self._pending.values() if not item.kept)

    async def wait_progress(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until some update is done (or ``timeout``), to poll again without spinning."""
        self._progress.clear()
        try:
            await asyncio.wait_for(self._progress.wait(), timeout)
        except TimeoutError:
            return

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait (at most ``timeout`` seconds) for the updates in flight, at shutdown."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self) -> None:
        """Stop the lanes; unfinished updates stay unconfirmed (Telegram delivers them again)."""
        self._closed = True
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for item in self._pending.values():
            if not item.done.done():
                item.done.cancel()
        self._pending.clear()
        self._lanes.clear()

    # ------------------------------------------------------------------------- running

    def _ensure_parsed(self, item: _Item) -> None:
        """Parse when the lane runs it, not as the batch arrives: building python-telegram-
        bot's objects for a batch of 100 held up the next getUpdates (and the urgent update
        in it) by about 20 ms."""
        if item.parsed:
            return
        item.parsed = True
        try:
            item.update = Update.de_json(item.raw, self._application.bot)
        except Exception as exc:  # any shape PTB cannot read: set aside, never logged
            log.warning("update_unreadable", update_id=item.update_id, error=type(exc).__name__)

    @staticmethod
    def _lane_key(item: _Item) -> object:
        update = item.update
        if update is not None:
            if update.effective_chat is not None:
                return update.effective_chat.id
            if update.effective_user is not None:
                return ("user", update.effective_user.id)
        return ("update", item.update_id)

    async def _run_lane(self, key: object, lane: _Lane) -> None:
        try:
            while lane.queue and not self._closed:
                item = lane.queue[0]
                outcome = await self._run(item, urgent=lane.urgent > 0)
                lane.queue.popleft()
                if item.urgent:
                    lane.urgent -= 1
                self._finish(item, outcome)
        finally:
            if not lane.queue and self._lanes.get(key) is lane:
                del self._lanes[key]

    def _finish(self, item: _Item, outcome: Outcome) -> None:
        self._pending.pop(item.update_id, None)
        if item.kept:
            self._forgettable.append(item.update_id)
        self._recently_done.add(item.update_id)
        self._done_order.append(item.update_id)
        if len(self._done_order) > RECENT:
            self._recently_done.discard(self._done_order.popleft())
        if not item.done.done():
            item.done.set_result(outcome)
        self._progress.set()

    async def _run(self, item: _Item, *, urgent: bool) -> Outcome:
        self._ensure_parsed(item)
        if item.update is None:
            await self._set_aside(item, "unreadable", tries=1)
            return Outcome.DEAD_LETTER
        tries = 0
        delay = RETRY_BASE
        while True:
            error = await self._attempt(item, urgent=urgent)
            if error is None:
                self.stalled = False
                return Outcome.HANDLED
            outage = is_outage(error) or isinstance(error, RetryAfter)
            if not outage:
                tries += 1
                if tries >= MAX_TRIES:
                    await self._set_aside(item, f"handler:{type(error).__name__}", tries=tries)
                    if self._on_give_up is not None:
                        await self._give_up(item.update)
                    return Outcome.DEAD_LETTER
            self.stalled = outage
            UPDATES_RETRIED.inc()
            log.warning(
                "update_retry",
                update_id=item.update_id,
                error=type(error).__name__,
                outage=outage,
                retry_in=round(delay, 2),
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _attempt(self, item: _Item, *, urgent: bool) -> BaseException | None:
        attempt = _Attempt()
        token = _attempt.set(attempt)
        try:
            if urgent:
                # Reserved: no ordinary slot to wait for; first to the database (priority.py).
                with urgent_work():
                    await self._application.process_update(item.update)
            else:
                async with self._slots:
                    await self._application.process_update(item.update)
        except Exception as exc:  # process_update itself failed (it normally catches)
            return exc
        finally:
            _attempt.reset(token)
        return attempt.error

    async def _give_up(self, update: Update) -> None:
        assert self._on_give_up is not None
        try:
            await self._on_give_up(update)
        except Exception as exc:
            log.warning("give_up_notice_failed", error=type(exc).__name__)

    async def _set_aside(self, item: _Item, reason: str, *, tries: int) -> None:
        """Store the dead letter; while the database is down, keep trying (never confirm a
        loss)."""
        delay = RETRY_BASE
        while True:
            try:
                await self._dead_letter(item.update_id, item.raw, reason, tries)
            except Exception as exc:
                self.stalled = True
                log.warning("dead_letter_retry", update_id=item.update_id, error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            DEAD_LETTERS.inc()
            log.error("update_set_aside", update_id=item.update_id, reason=reason, tries=tries)
            return


#: Update fields whose object names the chat in ``chat`` (PTB's ``effective_chat``).
_CHAT_FIELDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
)


def raw_lane_key(raw: dict[str, Any]) -> object | None:
    """The lane of an update read from its JSON, as :meth:`UpdateIntake._lane_key` reads the
    parsed update (the chat, else the user); None for a kind not read here."""
    for field_name in _CHAT_FIELDS:
        if field_name in raw:
            body = raw[field_name]
            chat = body.get("chat") if isinstance(body, dict) else None
            chat_id = chat.get("id") if isinstance(chat, dict) else None
            return chat_id if isinstance(chat_id, int) else None
    query = raw.get("callback_query")
    if isinstance(query, dict):
        message = query.get("message")
        chat = message.get("chat") if isinstance(message, dict) else None
        chat_id = chat.get("id") if isinstance(chat, dict) else None
        if isinstance(chat_id, int):
            return chat_id
        user = query.get("from")
        if message is None and isinstance(user, dict) and isinstance(user.get("id"), int):
            return ("user", user["id"])
    return None
