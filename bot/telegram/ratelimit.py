"""Rate limiting toward Telegram: PTB's ``AIORateLimiter`` plus the per-private-chat limit.

Telegram allows about 30 messages/s overall, 20/min per group and about 1/s per private chat.
``AIORateLimiter`` enforces the first two and retries a ``RetryAfter`` — pausing *every* request
while it waits — but has no per-private-chat limit (PITFALLS.md). A check-in's information
message and first question, right after a reply to the same patient, could then earn a 429 that
stalls the whole bot. :class:`ChatRateLimiter` adds a leaky bucket per private chat: a short
burst of :data:`PRIVATE_BURST` messages, then one per second, so the bot waits a moment instead.
Only the production bot uses it (``rate_limit=True``); the sandbox and most tests run without.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter

JSONDict = dict[str, Any]

#: Messages one private chat may receive at once before the 1/s pace applies: a check-in's
#: information message and first question, or "Noted" and the next question. One below the
#: burst Telegram tolerates (3, as the fake server models it): the spare message absorbs the
#: network jitter between our clock and Telegram's, so pacing at the limit never earns a 429.
PRIVATE_BURST = 2
#: Messages per second overall, one below Telegram's 30.
OVERALL_RATE = 29
#: Seconds per message in a private chat once the burst is used.
PRIVATE_PERIOD = 1.0
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


class ChatRateLimiter(AIORateLimiter):
    """``AIORateLimiter`` (global and group limits, RetryAfter retries) + private-chat pacing."""

    def __init__(self, *, max_retries: int = 3) -> None:
        # 29/s, not Telegram's 30: the same spare as PRIVATE_BURST, for network jitter (the
        # bench saw 27 429s in 300 check-ins at exactly 30/s).
        super().__init__(overall_max_rate=OVERALL_RATE, max_retries=max_retries)
        self._private: dict[int, AsyncLimiter] = {}

    def _limiter(self, chat_id: int) -> AsyncLimiter:
        limiter = self._private.get(chat_id)
        if limiter is None:
            if len(self._private) >= _MAX_LIMITERS:
                for key, old in list(self._private.items()):
                    if old.has_capacity(PRIVATE_BURST):  # idle: its bucket has drained
                        del self._private[key]
            limiter = AsyncLimiter(PRIVATE_BURST, PRIVATE_BURST * PRIVATE_PERIOD)
            self._private[chat_id] = limiter
        return limiter

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Pace messages to a private chat, then apply PTB's limits and retries."""
        chat_id: int | None
        try:
            chat_id = int(data.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            chat_id = None
        if chat_id is None or chat_id <= 0 or endpoint not in SENDING_ENDPOINTS:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        limiter = self._limiter(chat_id)

        async def paced(*inner_args: Any, **inner_kwargs: Any) -> bool | JSONDict | list[JSONDict]:
            async with limiter:
                return await callback(*inner_args, **inner_kwargs)

        return await super().process_request(paced, args, kwargs, endpoint, data, rate_limit_args)
