"""Telegram's flood limits (about 30 messages/s overall, 1/s per private chat, 20/min per group),
as token buckets that answer 429 with ``retry_after``, so the bot's own rate limiting is tested
against the limits it must respect."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from bot.sandbox.fake_api.wire import too_many_requests


class FloodRates(Protocol):
    """Bursts and sustained rates (per second), read from the server when a bucket is made,
    so a test may tighten them before the first message."""

    PRIVATE_BURST: float
    PRIVATE_RATE: float
    GROUP_BURST: float
    GROUP_RATE: float
    GLOBAL_BURST: float
    GLOBAL_RATE: float


@dataclass
class Bucket:
    """Token bucket: sustained ``rate`` per second with bursts up to ``capacity``."""

    capacity: float
    rate: float
    tokens: float
    stamp: float

    def wait_needed(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


class FloodLimiter:
    """One bucket for the whole bot and one per chat; a message takes a token from both."""

    def __init__(self, rates: FloodRates) -> None:
        self._rates = rates
        self._global: Bucket | None = None
        self._per_chat: dict[int, Bucket] = {}

    def check(self, chat_id: int | None) -> None:
        """Take a token for a message to ``chat_id``, or raise 429 with retry_after."""
        now = time.monotonic()
        rates = self._rates
        if self._global is None:
            self._global = Bucket(rates.GLOBAL_BURST, rates.GLOBAL_RATE, rates.GLOBAL_BURST, now)
        buckets = [self._global]
        if chat_id is not None:
            bucket = self._per_chat.get(chat_id)
            if bucket is None:
                if chat_id > 0:
                    bucket = Bucket(
                        rates.PRIVATE_BURST, rates.PRIVATE_RATE, rates.PRIVATE_BURST, now
                    )
                else:
                    bucket = Bucket(rates.GROUP_BURST, rates.GROUP_RATE, rates.GROUP_BURST, now)
                self._per_chat[chat_id] = bucket
            buckets.append(bucket)
        wait = max(b.wait_needed(now) for b in buckets)
        if wait > 0:
            raise too_many_requests(max(1, math.ceil(wait)))
        for b in buckets:
            b.tokens -= 1.0
