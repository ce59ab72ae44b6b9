"""The one injectable clock: nothing else in the bot calls ``datetime.now()``.

Tests and the sandbox replace it to play a six-month follow-up in seconds and to test DST and
quiet hours exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time (aware, UTC)."""
        ...

    def real_seconds_until(self, when: datetime) -> float:
        """How many real seconds to wait until ``when`` on this clock (0 when past)."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def real_seconds_until(self, when: datetime) -> float:
        """Seconds until ``when``."""
        return max(0.0, (when - self.now()).total_seconds())


class ManualClock:
    """A clock that only moves when told to: exact tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the frozen time."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._now += delta

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware)."""
        self._now = when.astimezone(UTC)

    def real_seconds_until(self, when: datetime) -> float:
        """A manual clock never moves by itself: callers must advance it, so never wait."""
        return 0.0 if when <= self._now else float("inf")


class AcceleratedClock:
    """Real time sped up by ``factor`` from ``start``: the sandbox plays days in seconds."""

    def __init__(self, start: datetime, factor: float, base: Clock | None = None) -> None:
        self._start = start.astimezone(UTC)
        self._factor = factor
        self._base = base or SystemClock()
        self._real_start = self._base.now()
        self._offset = timedelta()

    def now(self) -> datetime:
        """Return the accelerated time."""
        elapsed = self._base.now() - self._real_start
        return self._start + elapsed * self._factor + self._offset

    def jump(self, delta: timedelta) -> None:
        """Skip ``delta`` of simulated time at once (e.g. to the next due check-in)."""
        self._offset += delta

    def real_seconds_until(self, when: datetime) -> float:
        """How many real seconds until simulated ``when`` (0 when already past)."""
        remaining = (when - self.now()).total_seconds() / self._factor
        return max(0.0, remaining)
