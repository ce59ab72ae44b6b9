"""The one injectable clock: nothing else in the bot calls ``datetime.now()``.

Tests and the sandbox replace it to play a six-month follow-up in seconds and to test DST and
quiet hours exactly; ``CLOCK_SPEED``/``CLOCK_START`` make ``python -m bot run`` rehearse a
protocol on an :class:`AcceleratedClock`.

Two kinds of time, kept apart on purpose:

* the **service clock** (:meth:`Clock.now`): when check-ins fall due, reminders, windows,
  re-escalation, the digest. It is what a rehearsal speeds up;
* **real time** (:meth:`Clock.wall_now`, :meth:`Clock.after_real`): what protects against a
  dead or slow process (claims, see :mod:`bot.services.claims`) and what a remote server asks
  for (Telegram's ``retry_after``, network backoff), a person at a keyboard (a staff dialog).
  A claim measured on a clock running 3,600 times too fast would go stale in milliseconds and
  a live process's messages would be sent twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time on the service clock (aware, UTC)."""
        ...

    def real_seconds_until(self, when: datetime) -> float:
        """How many real seconds to wait until ``when`` on this clock (0 when past)."""
        ...

    def wall_now(self) -> datetime:
        """The real time (aware, UTC): claims are dated with it, never with :meth:`now`."""
        ...

    def after_real(self, delay: timedelta) -> datetime:
        """The service-clock time once ``delay`` of real time has passed (a retry, a claim)."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def real_seconds_until(self, when: datetime) -> float:
        """Seconds until ``when``."""
        return max(0.0, (when - self.now()).total_seconds())

    def wall_now(self) -> datetime:
        """The same as :meth:`now`."""
        return self.now()

    def after_real(self, delay: timedelta) -> datetime:
        """Now plus ``delay``."""
        return self.now() + delay


class ManualClock:
    """A clock that only moves when told to: exact tests.

    Its world has a single time: claims and retries follow it too (a test that jumps an hour
    ahead finds an hour-old claim stale), so tests stay exact.
    """

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

    def wall_now(self) -> datetime:
        """The frozen time (see the class docstring)."""
        return self._now

    def after_real(self, delay: timedelta) -> datetime:
        """The frozen time plus ``delay``."""
        return self._now + delay


class AcceleratedClock:
    """Real time sped up by ``factor`` from ``start``: a rehearsal plays days in seconds.

    ``held=True`` keeps it at ``start`` until :meth:`release` (``run`` releases it once the
    database is ready, so a slow start-up does not eat simulated hours).
    """

    def __init__(
        self, start: datetime, factor: float, base: Clock | None = None, *, held: bool = False
    ) -> None:
        if factor <= 0:
            raise ValueError("AcceleratedClock needs a factor above 0")
        self._start = start.astimezone(UTC)
        self._factor = factor
        self._base = base or SystemClock()
        self._real_start: datetime | None = None if held else self._base.now()
        self._offset = timedelta()

    @property
    def factor(self) -> float:
        """Simulated seconds per real second."""
        return self._factor

    def release(self) -> None:
        """Start moving (from ``start``); nothing when already moving."""
        if self._real_start is None:
            self._real_start = self._base.now()

    def now(self) -> datetime:
        """Return the accelerated time."""
        if self._real_start is None:
            return self._start + self._offset
        elapsed = self._base.now() - self._real_start
        return self._start + elapsed * self._factor + self._offset

    def jump(self, delta: timedelta) -> None:
        """Skip ``delta`` of simulated time at once (e.g. to the next due check-in)."""
        self._offset += delta

    def real_seconds_until(self, when: datetime) -> float:
        """How many real seconds until simulated ``when`` (0 when already past)."""
        remaining = (when - self.now()).total_seconds() / self._factor
        return max(0.0, remaining)

    def wall_now(self) -> datetime:
        """The real time of the clock this one speeds up."""
        return self._base.now()

    def after_real(self, delay: timedelta) -> datetime:
        """Simulated now plus ``delay`` sped up: ``delay`` of real time from now."""
        return self.now() + delay * self._factor
