"""Rate limiting toward Telegram, per chat: a 429 for one chat never holds back another.

Telegram allows about 30 messages/s overall, 20 a minute per group and about 1/s per private
chat. PTB's ``AIORateLimiter`` enforces the first two but answers a ``RetryAfter`` by pausing
*every* request: a 429 on the staff group (20/min, easily reached during a burst of alerts)
delayed an unrelated patient's reply by 38 s. :class:`ChatRateLimiter` keeps one budget per
chat instead:

- overall: :data:`OVERALL_RATE` messages a second (one below Telegram's 30, for jitter);
- a group: :data:`GROUP_RATE` messages a minute;
- a private chat: a burst of :data:`PRIVATE_BURST`, then one a second;
- a ``RetryAfter`` for a chat makes only that chat wait, and the request is tried again once
  after the wait. A ``RetryAfter`` for no chat in particular pauses every request, as Telegram
  asks. Further failures go back to the caller, whose own retry (the patient outbox, the alert
  delivery, the dispatcher) reschedules the message: one retry layer, not retries under retries.

Several processes on one PostgreSQL share the overall and the group budgets through the
database (:class:`bot.telegram.pace.SharedPace`); each keeps its own private-chat budgets.

Only the production bot uses it (``rate_limit=True``); the sandbox and most tests run without.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.telegram.pace import SharedPace

JSONDict = dict[str, Any]

#: Messages one private chat may receive at once before the 1/s pace applies: a check-in's
#: information message and first question, or "Noted" and the next question. One below the
#: burst Telegram tolerates (3, as the fake server models it): the spare message absorbs the
#: network jitter between our clock and Telegram's, so pacing at the limit never earns a 429.
PRIVATE_BURST = 2
#: Seconds per message in a private chat once the burst is used.
PRIVATE_PERIOD = 1.0
#: Messages per second overall, one below Telegram's 30.
OVERALL_RATE = 29
#: Messages per minute in one group, as Telegram allows.
GROUP_RATE = 20
#: Methods that post a message in a chat (edits and chat actions are not counted).
SENDING_ENDPOINTS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVoice",
        "sendVideo",
        "sendAudio",
        "sendAnimation",
        "sendSticker",
        "sendLocation",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
    }
)
#: Idle per-chat limiters are dropped beyond this many (memory stays bounded).
_MAX_LIMITERS = 2048

Callback = Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]


def _seconds(exc: RetryAfter) -> float:
    retry = exc.retry_after
    return retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)


class ChatRateLimiter(BaseRateLimiter[int]):
    """Telegram's limits, with a separate budget and a separate 429 pause per chat; the
    overall and group budgets from ``shared`` when several processes send (PostgreSQL)."""

    def __init__(self, shared: SharedPace | None = None) -> None:
        self._shared = shared
        self._overall = AsyncLimiter(OVERALL_RATE, 1)
        self._chats: dict[int, AsyncLimiter] = {}
        self._paused_until: dict[int, float] = {}
        self._global_pause_until = 0.0

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Close the shared pace's connection."""
        if self._shared is not None:
            await self._shared.close()

    def _limiter(self, chat_id: int) -> AsyncLimiter:
        limiter = self._chats.get(chat_id)
        if limiter is None:
            if len(self._chats) >= _MAX_LIMITERS:
                for key, old in list(self._chats.items()):
                    if old.has_capacity(old.max_rate):  # idle: its bucket has drained
                        del self._chats[key]
                        self._paused_until.pop(key, None)
            limiter = (
                AsyncLimiter(PRIVATE_BURST, PRIVATE_BURST * PRIVATE_PERIOD)
                if chat_id > 0
                else AsyncLimiter(GROUP_RATE, 60)
            )
            self._chats[chat_id] = limiter
        return limiter

    async def _wait_pauses(self, chat_id: int | None) -> None:
        while True:
            until = self._global_pause_until
            if chat_id is not None:
                until = max(until, self._paused_until.get(chat_id, 0.0))
            delay = until - time.monotonic()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Wait for the chat's budget (and its 429 pause), send, retry once after a 429."""
        chat_id: int | None
        try:
            chat_id = int(data.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            chat_id = None
        try:
            return await self._send(callback, args, kwargs, endpoint=endpoint, chat_id=chat_id)
        except RetryAfter as exc:
            await self._pause(chat_id, _seconds(exc))
        return await self._send(callback, args, kwargs, endpoint=endpoint, chat_id=chat_id)

    async def _send(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        *,
        endpoint: str,
        chat_id: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        await self._wait_pauses(chat_id)
        if endpoint in SENDING_ENDPOINTS:
            if chat_id is not None:
                await self._chat_turn(chat_id)
            if self._shared is not None:
                await self._shared.turn()
            else:
                await self._overall.acquire()
        return await callback(*args, **kwargs)

    async def _chat_turn(self, chat_id: int) -> None:
        """A group's turn from the shared pace (any process may post there), a private chat's
        from this process's own budget."""
        if chat_id < 0 and self._shared is not None and await self._shared.group_turn(chat_id):
            return
        await self._limiter(chat_id).acquire()

    async def _pause(self, chat_id: int | None, seconds: float) -> None:
        """Telegram said wait: only that chat waits (every chat, in every process, when it
        named none)."""
        until = time.monotonic() + seconds + 0.1
        if chat_id is None:
            self._global_pause_until = max(self._global_pause_until, until)
            if self._shared is not None:
                await self._shared.hold_back(seconds + 0.1)
        else:
            self._paused_until[chat_id] = max(self._paused_until.get(chat_id, 0.0), until)
