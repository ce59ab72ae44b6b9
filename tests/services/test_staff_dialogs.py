"""Reading the procedure time a nurse types in the guided /enroll."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.services.staff_dialogs import parse_procedure_time

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 08:00 in Paris


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("01/12/2026 09:30", datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)),
        ("1/12 9:30", datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)),
        ("2026-12-03 14:00", datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)),
        ("09:30", datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)),
        ("14h15", datetime(2026, 12, 1, 14, 15, tzinfo=PARIS)),
        ("  9h ", datetime(2026, 12, 1, 9, 0, tzinfo=PARIS)),
    ],
)
def test_accepted_forms(typed: str, expected: datetime) -> None:
    assert parse_procedure_time(typed, now=NOW, time_zone="Europe/Paris") == expected


@pytest.mark.parametrize(
    "typed",
    [
        "demain",
        "25:00",
        "32/12/2026 10:00",
        "29/02/2027 10:00",
        "2062-12-01 10:00",
        "01/10/2026 10:00",
        "",
    ],
)
def test_unreadable_or_absurd_dates_are_refused(typed: str) -> None:
    assert parse_procedure_time(typed, now=NOW, time_zone="Europe/Paris") is None
