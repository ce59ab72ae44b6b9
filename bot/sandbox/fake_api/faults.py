"""Fault injection: make matching Bot API calls fail as Telegram or the network sometimes do
(429, 5xx, 403, chat not found, a stalled call, a connection lost after the call was applied)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from bot.sandbox.fake_api.wire import (
    SENDING_LOWER,
    ApiError,
    blocked,
    chat_not_found,
    too_many_requests,
)

#: Fault kinds accepted by :meth:`FakeTelegramServer.inject_fault`.
FAULT_KINDS: Final = frozenset(
    {"429", "500", "502", "403", "400_chat_not_found", "timeout", "drop"}
)


@dataclass
class Fault:
    kind: str
    method: str | None  # lower-cased
    chat_id: int | None
    remaining: int | None
    until: float | None
    retry_after: int

    def error(self) -> ApiError:
        """The error answer of an error fault (not of a stall or a drop)."""
        return {
            "429": too_many_requests(self.retry_after),
            "500": ApiError(500, "Internal Server Error"),
            "502": ApiError(502, "Bad Gateway"),
            "403": blocked(),
            "400_chat_not_found": chat_not_found(),
        }[self.kind]


class FaultInjector:
    """The faults in force, matched against each call in the order they were injected."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def inject(
        self,
        kind: str,
        *,
        method: str | None,
        chat_id: int | None,
        count: int | None,
        seconds: float | None,
        retry_after: int,
    ) -> None:
        """See :meth:`FakeTelegramServer.inject_fault`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        until = time.monotonic() + seconds if seconds is not None else None
        remaining = None if seconds is not None else count
        if remaining is not None and remaining <= 0:
            raise ValueError("count must be positive (or None)")
        self._faults.append(
            Fault(
                kind=kind,
                method=method.lower() if method else None,
                chat_id=chat_id,
                remaining=remaining,
                until=until,
                retry_after=retry_after,
            )
        )

    def clear(self) -> None:
        self._faults.clear()

    def match(self, method: str, chat_id: int | None) -> Fault | None:
        """The fault this call (lower-cased method) meets, if any; it uses up one of its count."""
        if not self._faults:
            return None
        now = time.monotonic()
        for fault in list(self._faults):
            if fault.until is not None and now > fault.until:
                self._faults.remove(fault)
                continue
            if fault.method is None:
                if method not in SENDING_LOWER:
                    continue
            elif fault.method != method:
                continue
            if fault.chat_id is not None and fault.chat_id != chat_id:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault
        return None
