"""The clocks: the rehearsal clock speeds up the service time, never real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import AcceleratedClock, ManualClock

START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_an_accelerated_clock_speeds_up_service_time_only() -> None:
    wall = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    clock = AcceleratedClock(START, 3600, base=wall)
    wall.advance(timedelta(seconds=2))
    assert clock.now() == START + timedelta(hours=2)
    assert clock.wall_now() == wall.now()
    assert clock.after_real(timedelta(seconds=30)) == clock.now() + timedelta(hours=30)
    assert clock.real_seconds_until(clock.now() + timedelta(hours=1)) == 1.0


def test_a_held_clock_starts_moving_from_its_start_when_released() -> None:
    wall = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    clock = AcceleratedClock(START, 3600, base=wall, held=True)
    wall.advance(timedelta(seconds=5))  # a slow start-up costs no simulated time
    assert clock.now() == START
    clock.release()
    wall.advance(timedelta(seconds=1))
    assert clock.now() == START + timedelta(hours=1)
    clock.release()  # once moving, a second release changes nothing
    assert clock.now() == START + timedelta(hours=1)


def test_a_manual_clock_is_its_own_real_time() -> None:
    clock = ManualClock(START)
    assert clock.wall_now() == START
    assert clock.after_real(timedelta(minutes=2)) == START + timedelta(minutes=2)


def test_an_accelerated_clock_needs_a_positive_speed() -> None:
    with pytest.raises(ValueError, match="above 0"):
        AcceleratedClock(START, 0)
