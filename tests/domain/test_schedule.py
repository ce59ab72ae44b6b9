"""Due times, windows and reminders: exact examples, DST edges, and properties (hypothesis).

DST dates used below: Europe/Paris 2026-03-29 (02:00 → 03:00) and 2026-10-25 (03:00 → 02:00);
America/New_York 2026-03-08 (02:00 → 03:00) and 2026-11-01 (02:00 → 01:00); Asia/Kolkata none.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.protocol import CheckInDef, Indication, Offset, Protocol, QuietHours, Reminders
from bot.domain.schedule import (
    PlannedCheckIn,
    add_months,
    day_number,
    local_due_time,
    next_outside_quiet_hours,
    plan_checkins,
    reminder_times,
)
from bot.protocols import default_schedules_dir, load_protocol_file

PROTOCOL = load_protocol_file(default_schedules_dir() / "knee-cryoneurolysis.yaml")
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
ZONES = ("Europe/Paris", "America/New_York", "Asia/Kolkata")
OA = Indication.OSTEOARTHRITIS


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def plan(
    procedure_at: datetime,
    *,
    time_zone: str = "Europe/Paris",
    consented_at: datetime | None = None,
) -> dict[str, PlannedCheckIn]:
    planned = plan_checkins(
        PROTOCOL,
        procedure_at=procedure_at,
        time_zone=time_zone,
        indication=OA,
        consented_at=consented_at,
    )
    return {item.checkin_id: item for item in planned}


def checkin(checkin_id: str, *, days: int = 0, months: int = 0, at: str = "10:00") -> CheckInDef:
    return CheckInDef(
        id=checkin_id,
        offset=Offset(days=days, months=months),
        time=at,
        window_hours=24,
        questions=("pain_avg",),
    )


def with_checkins(*checkins: CheckInDef) -> Protocol:
    return PROTOCOL.model_copy(update={"checkins": checkins})


# --- exact examples ---------------------------------------------------------------------------


def test_december_procedure_in_paris_gives_the_whole_course_in_local_time() -> None:
    planned = plan(datetime(2026, 12, 1, 9, 30, tzinfo=PARIS))

    assert list(planned) == ["d0_evening", "d1", "d2", "d3", "d7", "d14", "w6", "m3", "m6"]
    assert {key: item.due_at for key, item in planned.items()} == {
        "d0_evening": utc(2026, 12, 1, 17, 0),  # 18:00 Paris
        "d1": utc(2026, 12, 2, 9, 0),
        "d2": utc(2026, 12, 3, 9, 0),
        "d3": utc(2026, 12, 4, 9, 0),
        "d7": utc(2026, 12, 8, 9, 0),
        "d14": utc(2026, 12, 15, 9, 0),
        "w6": utc(2027, 1, 12, 9, 0),
        "m3": utc(2027, 3, 1, 9, 0),  # 10:00 Paris, winter time
        "m6": utc(2027, 6, 1, 8, 0),  # 10:00 Paris, summer time
    }
    assert all(item.status == "scheduled" and item.reason is None for item in planned.values())
    assert planned["d0_evening"].window_ends_at == utc(2026, 12, 1, 19, 30)
    assert planned["d1"].window_ends_at == utc(2026, 12, 2, 19, 0)
    assert planned["m6"].window_ends_at == utc(2027, 6, 4, 8, 0)
    assert all(item.due_at.tzinfo is UTC for item in planned.values())


def test_a_late_afternoon_procedure_pushes_the_evening_check_in_three_hours_after_it() -> None:
    planned = plan(datetime(2026, 12, 1, 16, 30, tzinfo=PARIS))

    evening = planned["d0_evening"]
    assert evening.due_at.astimezone(PARIS) == datetime(2026, 12, 1, 19, 30, tzinfo=PARIS)
    assert evening.status == "scheduled"
    assert evening.window_ends_at == evening.due_at + timedelta(hours=2.5)


@pytest.mark.parametrize(
    ("procedure", "evening", "status", "reason"),
    [
        (time(17, 59), time(20, 59), "scheduled", None),
        (time(18, 0), time(21, 0), "cancelled", "quiet_hours"),  # quiet hours start inclusive
        (time(19, 0), time(22, 0), "cancelled", "quiet_hours"),
        (time(23, 30), time(2, 30), "cancelled", "quiet_hours"),  # into the next night
    ],
)
def test_an_evening_check_in_pushed_into_quiet_hours_is_cancelled_not_moved(
    procedure: time, evening: time, status: str, reason: str | None
) -> None:
    planned = plan(datetime.combine(date(2026, 12, 1), procedure, tzinfo=PARIS))

    assert planned["d0_evening"].due_at.astimezone(PARIS).time() == evening
    assert (planned["d0_evening"].status, planned["d0_evening"].reason) == (status, reason)
    assert planned["d1"].status == "scheduled"
    assert planned["d1"].due_at == utc(2026, 12, 2, 9, 0)


@pytest.mark.parametrize(
    ("procedure", "zone", "evening_utc", "d1_utc", "d2_utc"),
    [
        # Saturday before the spring change: d1 is on the DST Sunday, still at 10:00 local.
        (datetime(2026, 3, 28, 9, 30, tzinfo=PARIS), "Europe/Paris", 17, utc(2026, 3, 29, 8), 8),
        (
            datetime(2026, 3, 7, 9, 30, tzinfo=NEW_YORK),
            "America/New_York",
            23,
            utc(2026, 3, 8, 14),
            14,
        ),
        # Saturday before the autumn change.
        (datetime(2026, 10, 24, 9, 30, tzinfo=PARIS), "Europe/Paris", 16, utc(2026, 10, 25, 9), 9),
        (
            datetime(2026, 10, 31, 9, 30, tzinfo=NEW_YORK),
            "America/New_York",
            22,
            utc(2026, 11, 1, 15),
            15,
        ),
        (
            datetime(2026, 3, 28, 9, 30, tzinfo=KOLKATA),
            "Asia/Kolkata",
            12,
            utc(2026, 3, 29, 4, 30),
            4,
        ),
    ],
)
def test_check_ins_keep_their_local_time_across_a_dst_change(
    procedure: datetime, zone: str, evening_utc: int, d1_utc: datetime, d2_utc: int
) -> None:
    planned = plan(procedure, time_zone=zone)

    assert planned["d0_evening"].due_at.hour == evening_utc
    assert planned["d1"].due_at == d1_utc
    assert planned["d2"].due_at.hour == d2_utc
    tz = ZoneInfo(zone)
    assert [item.due_at.astimezone(tz).time() for item in planned.values()] == [
        time(18, 0),
        *[time(10, 0)] * 8,
    ]


def test_a_gap_time_is_moved_forward_by_the_gap() -> None:
    night = checkin("night", days=1, at="02:30")

    paris = local_due_time(night, procedure_at=datetime(2026, 3, 28, 10, tzinfo=PARIS), tz=PARIS)
    new_york = local_due_time(
        night, procedure_at=datetime(2026, 3, 7, 10, tzinfo=NEW_YORK), tz=NEW_YORK
    )

    assert paris.astimezone(UTC) == utc(2026, 3, 29, 1, 30)
    assert (paris.hour, paris.minute, paris.utcoffset()) == (3, 30, timedelta(hours=2))
    assert new_york.astimezone(UTC) == utc(2026, 3, 8, 7, 30)
    assert (new_york.hour, new_york.minute) == (3, 30)


def test_an_ambiguous_fold_time_is_its_first_occurrence() -> None:
    paris = local_due_time(
        checkin("night", days=1, at="02:30"),
        procedure_at=datetime(2026, 10, 24, 10, tzinfo=PARIS),
        tz=PARIS,
    )
    new_york = local_due_time(
        checkin("night", days=1, at="01:30"),
        procedure_at=datetime(2026, 10, 31, 10, tzinfo=NEW_YORK),
        tz=NEW_YORK,
    )

    assert paris.astimezone(UTC) == utc(2026, 10, 25, 0, 30)  # 02:30 summer time
    assert paris.fold == 0
    assert new_york.astimezone(UTC) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT


def test_local_due_time_takes_months_then_days_and_never_precedes_the_procedure() -> None:
    procedure = datetime(2027, 1, 31, 14, 0, tzinfo=PARIS)

    later = local_due_time(checkin("x", months=1, days=2), procedure_at=procedure, tz=PARIS)
    same_day = local_due_time(checkin("y", at="10:00"), procedure_at=procedure, tz=PARIS)

    assert later == datetime(2027, 3, 2, 10, 0, tzinfo=PARIS)  # 28 Feb + 2 days
    assert same_day == procedure


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2026, 12, 1), 3, date(2027, 3, 1)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 10, 31), 1, date(2026, 11, 30)),
        (date(2026, 12, 31), 12, date(2027, 12, 31)),
        (date(2026, 1, 15), 25, date(2028, 2, 15)),
        (date(2026, 5, 15), 0, date(2026, 5, 15)),
    ],
)
def test_add_months_keeps_the_calendar_day_clamped_to_the_month_end(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


def test_month_check_ins_after_a_procedure_on_the_30th_land_on_the_last_of_february() -> None:
    planned = plan(datetime(2026, 11, 30, 9, 30, tzinfo=PARIS))

    assert planned["m3"].due_at == utc(2027, 2, 28, 9, 0)
    assert planned["m6"].due_at == utc(2027, 5, 30, 8, 0)


def test_check_ins_due_before_consent_are_cancelled_not_missed() -> None:
    procedure = datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)

    # d1's window is still open at consent, but it fell due before: it is not sent late.
    planned = plan(procedure, consented_at=datetime(2026, 12, 2, 12, 0, tzinfo=PARIS))
    at_due_time = plan(procedure, consented_at=utc(2026, 12, 3, 9, 0))

    assert [(item.status, item.reason) for item in planned.values()][:3] == [
        ("cancelled", "before_consent"),
        ("cancelled", "before_consent"),
        ("scheduled", None),
    ]
    assert planned["d1"].due_at == utc(2026, 12, 2, 9, 0)  # the time is still recorded
    assert at_due_time["d1"].reason == "before_consent"
    assert at_due_time["d2"].status == "scheduled"


def test_quiet_hours_win_over_consent_as_the_reason() -> None:
    planned = plan(datetime(2026, 12, 1, 19, 0, tzinfo=PARIS), consented_at=utc(2026, 12, 5, 0, 0))

    assert planned["d0_evening"].reason == "quiet_hours"
    assert planned["d1"].reason == "before_consent"


def test_check_ins_of_other_indications_are_left_out_and_windows_stop_at_the_next() -> None:
    tka_only = CheckInDef(
        id="d5_tka",
        offset=Offset(days=5),
        time="11:00",
        window_hours=200,
        questions=("pain_avg",),
        indications=(Indication.AFTER_KNEE_REPLACEMENT,),
    )
    checkins = list(PROTOCOL.checkins)
    protocol = with_checkins(*checkins[:4], tka_only, *checkins[4:])
    procedure = datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)

    for_oa = plan_checkins(
        protocol, procedure_at=procedure, time_zone="Europe/Paris", indication=OA
    )
    for_tka = {
        item.checkin_id: item
        for item in plan_checkins(
            protocol,
            procedure_at=procedure,
            time_zone="Europe/Paris",
            indication=Indication.AFTER_KNEE_REPLACEMENT,
        )
    }

    assert "d5_tka" not in {item.checkin_id for item in for_oa}
    assert for_tka["d5_tka"].due_at == utc(2026, 12, 6, 10, 0)
    assert for_tka["d5_tka"].window_ends_at == for_tka["d7"].due_at  # not due + 200 h


@pytest.mark.parametrize(
    "checkins",
    [
        (checkin("a", days=1), checkin("b", days=1)),  # same time
        (checkin("a", days=2), checkin("b", days=1)),  # out of order
    ],
)
def test_colliding_or_inverted_check_ins_raise(checkins: tuple[CheckInDef, ...]) -> None:
    with pytest.raises(ValueError, match="does not come after"):
        plan_checkins(
            with_checkins(*checkins),
            procedure_at=datetime(2026, 12, 1, 9, 30, tzinfo=PARIS),
            time_zone="Europe/Paris",
            indication=OA,
        )


def test_month_and_day_offsets_that_meet_raise() -> None:
    # 31 Jan + 28 days = 28 Feb = 31 Jan + 1 month (clamped): a protocol can collide this way.
    protocol = with_checkins(checkin("d28", days=28), checkin("m1", months=1))

    with pytest.raises(ValueError, match="'m1'"):
        plan_checkins(
            protocol,
            procedure_at=datetime(2027, 1, 31, 9, 30, tzinfo=PARIS),
            time_zone="Europe/Paris",
            indication=OA,
        )


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 12, 1, 9, 30)
    aware = datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)

    with pytest.raises(ValueError, match="procedure_at must be an aware"):
        plan_checkins(PROTOCOL, procedure_at=naive, time_zone="Europe/Paris", indication=OA)
    with pytest.raises(ValueError, match="consented_at"):
        plan(aware, consented_at=naive)
    with pytest.raises(ValueError, match="moment"):
        day_number(aware, naive, "Europe/Paris")
    with pytest.raises(ValueError, match="moment"):
        next_outside_quiet_hours(naive, PROTOCOL.quiet_hours, "Europe/Paris")
    with pytest.raises(ValueError, match="window_ends_at"):
        reminder_times(
            due_at=aware,
            window_ends_at=naive,
            reminders=PROTOCOL.reminders,
            quiet_hours=PROTOCOL.quiet_hours,
            time_zone="Europe/Paris",
        )


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 12, 1, 23, 59, tzinfo=PARIS), 0),
        (datetime(2026, 12, 2, 7, 0, tzinfo=PARIS), 1),
        (utc(2026, 12, 1, 23, 30), 1),  # 00:30 in Paris: the local date counts
        (datetime(2026, 11, 30, 12, 0, tzinfo=PARIS), -1),
        (datetime(2027, 3, 1, 10, 0, tzinfo=PARIS), 90),
    ],
)
def test_day_number_counts_local_calendar_days(moment: datetime, expected: int) -> None:
    procedure = datetime(2026, 12, 1, 22, 30, tzinfo=PARIS)

    assert day_number(procedure, moment, "Europe/Paris") == expected


def test_day_number_across_the_spring_change() -> None:
    procedure = datetime(2026, 3, 28, 23, 30, tzinfo=PARIS)

    assert day_number(procedure, datetime(2026, 3, 30, 0, 30, tzinfo=PARIS), "Europe/Paris") == 2


def reminders_for(
    due_at: datetime,
    window_ends_at: datetime,
    reminders: Reminders = PROTOCOL.reminders,
    quiet_hours: QuietHours = PROTOCOL.quiet_hours,
) -> list[datetime]:
    return reminder_times(
        due_at=due_at,
        window_ends_at=window_ends_at,
        reminders=reminders,
        quiet_hours=quiet_hours,
        time_zone="Europe/Paris",
    )


def test_reminders_follow_the_check_in_every_after_minutes() -> None:
    d1 = plan(datetime(2026, 12, 1, 9, 30, tzinfo=PARIS))["d1"]

    assert reminders_for(d1.due_at, d1.window_ends_at) == [
        utc(2026, 12, 2, 11, 0),
        utc(2026, 12, 2, 13, 0),
    ]


def test_a_reminder_in_quiet_hours_waits_for_their_end_and_the_next_counts_from_there() -> None:
    due = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
    window_end = datetime(2026, 12, 2, 12, 0, tzinfo=PARIS)

    times = reminders_for(due, window_end, Reminders(after_minutes=180, max=5))

    assert times == [
        datetime(2026, 12, 2, 8, 0, tzinfo=PARIS),  # 21:00 is quiet
        datetime(2026, 12, 2, 11, 0, tzinfo=PARIS),
    ]  # 14:00 is after the window: dropped


def test_reminders_are_capped_and_never_at_or_after_the_window_end() -> None:
    due = datetime(2026, 12, 2, 10, 0, tzinfo=PARIS)

    assert (
        len(reminders_for(due, due + timedelta(hours=10), Reminders(after_minutes=60, max=3))) == 3
    )
    assert reminders_for(due, due + timedelta(hours=10), Reminders(after_minutes=60, max=0)) == []
    assert reminders_for(due, due + timedelta(hours=4)) == [utc(2026, 12, 2, 11, 0)]  # 14:00 = end


def test_a_reminder_pushed_past_the_window_is_dropped() -> None:
    evening = plan(datetime(2026, 12, 1, 17, 30, tzinfo=PARIS))["d0_evening"]  # 20:30

    assert reminders_for(evening.due_at, evening.window_ends_at) == []  # 22:30 → 08:00: too late


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 12, 1, 20, 59, tzinfo=PARIS), datetime(2026, 12, 1, 20, 59, tzinfo=PARIS)),
        (datetime(2026, 12, 1, 21, 0, tzinfo=PARIS), datetime(2026, 12, 2, 8, 0, tzinfo=PARIS)),
        (datetime(2026, 12, 2, 3, 0, tzinfo=PARIS), datetime(2026, 12, 2, 8, 0, tzinfo=PARIS)),
        (datetime(2026, 12, 2, 8, 0, tzinfo=PARIS), datetime(2026, 12, 2, 8, 0, tzinfo=PARIS)),
        # The night of the spring change is an hour shorter in UTC: 08:00 CEST = 06:00 UTC.
        (datetime(2026, 3, 28, 23, 0, tzinfo=PARIS), utc(2026, 3, 29, 6, 0)),
        (datetime(2026, 10, 24, 23, 0, tzinfo=PARIS), utc(2026, 10, 25, 7, 0)),
    ],
)
def test_next_outside_quiet_hours(moment: datetime, expected: datetime) -> None:
    result = next_outside_quiet_hours(moment, PROTOCOL.quiet_hours, "Europe/Paris")

    assert result == expected
    assert result.tzinfo is UTC


def test_quiet_hours_ending_inside_the_fold_end_at_the_next_occurrence_of_the_end_time() -> None:
    quiet = QuietHours(start="21:00", end="02:30")

    # 02:15 summer time (first pass) → 02:30 summer time.
    assert next_outside_quiet_hours(utc(2026, 10, 25, 0, 15), quiet, "Europe/Paris") == utc(
        2026, 10, 25, 0, 30
    )
    # 02:15 winter time (second pass): the first 02:30 is already past → 02:30 winter time.
    assert next_outside_quiet_hours(utc(2026, 10, 25, 1, 15), quiet, "Europe/Paris") == utc(
        2026, 10, 25, 1, 30
    )


def test_quiet_hours_ending_inside_the_gap_end_one_gap_later() -> None:
    quiet = QuietHours(start="22:00", end="02:30")

    # 01:45 winter time; 02:30 does not exist that night → 03:30 summer time.
    assert next_outside_quiet_hours(utc(2026, 3, 29, 0, 45), quiet, "Europe/Paris") == utc(
        2026, 3, 29, 1, 30
    )


def test_a_quiet_end_skipped_by_the_gap_and_still_quiet_once_shifted_waits_a_day() -> None:
    # Contrived quiet hours 02:45-02:30: on 29 March the clock jumps 02:00 → 03:00, never
    # showing 02:30-02:45, so the whole day is quiet by the wall clock.
    quiet = QuietHours(start="02:45", end="02:30")

    result = next_outside_quiet_hours(utc(2026, 3, 28, 2, 0), quiet, "Europe/Paris")

    assert result == datetime(2026, 3, 30, 2, 30, tzinfo=PARIS)


# --- properties -------------------------------------------------------------------------------


def expected_date(procedure_day: date, offset: Offset) -> date:
    """An independent oracle for the intended local date (clamp by trial)."""
    months = procedure_day.year * 12 + procedure_day.month - 1 + offset.months
    year, month = months // 12, months % 12 + 1
    day = procedure_day.day
    while True:
        try:
            target = date(year, month, day)
        except ValueError:
            day -= 1
        else:
            return target + timedelta(days=offset.days)


procedure_days = st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31))
procedure_times = st.builds(time, hour=st.integers(7, 19), minute=st.integers(0, 59)) | st.just(
    time(20, 0)
)
consent_delays = st.none() | st.integers(min_value=-48 * 60, max_value=200 * 24 * 60)
reminder_settings = st.builds(
    Reminders, after_minutes=st.integers(1, 24 * 60), max=st.integers(0, 6)
)


@settings(max_examples=200, deadline=None)
@given(
    day=procedure_days,
    at=procedure_times,
    zone=st.sampled_from(ZONES),
    indication=st.sampled_from(list(Indication)),
    consent_delay=consent_delays,
    reminders=st.one_of(st.just(PROTOCOL.reminders), reminder_settings),
)
def test_plans_respect_local_time_order_quiet_hours_and_windows(
    day: date,
    at: time,
    zone: str,
    indication: Indication,
    consent_delay: int | None,
    reminders: Reminders,
) -> None:
    tz = ZoneInfo(zone)
    procedure = datetime.combine(day, at, tzinfo=tz)
    consented_at = None if consent_delay is None else procedure + timedelta(minutes=consent_delay)
    quiet = PROTOCOL.quiet_hours

    planned = plan_checkins(
        PROTOCOL,
        procedure_at=procedure,
        time_zone=zone,
        indication=indication,
        consented_at=consented_at,
    )

    assert [item.checkin_id for item in planned] == [c.id for c in PROTOCOL.checkins]
    for definition, item in zip(PROTOCOL.checkins, planned, strict=True):
        local = item.due_at.astimezone(tz)
        assert item.due_at.tzinfo is UTC
        assert item.window_ends_at > item.due_at
        assert item.window_ends_at <= item.due_at + timedelta(hours=definition.window_hours)
        if definition.min_hours_after_procedure:
            # No DST change happens between 07:00 and midnight in these zones, so wall-clock
            # arithmetic is an independent oracle here.
            pushed = procedure.replace(tzinfo=None) + timedelta(
                hours=definition.min_hours_after_procedure
            )
            intended = max(datetime.combine(day, definition.local_time), pushed)
        else:
            intended = datetime.combine(
                expected_date(day, definition.offset), definition.local_time
            )
        assert local.replace(tzinfo=None) == intended
        in_quiet = quiet.contains(local.time())
        before_consent = consented_at is not None and item.due_at < consented_at
        if in_quiet:
            assert (item.status, item.reason) == ("cancelled", "quiet_hours")
        elif before_consent:
            assert (item.status, item.reason) == ("cancelled", "before_consent")
        else:
            assert (item.status, item.reason) == ("scheduled", None)

    scheduled = [item for item in planned if item.status == "scheduled"]
    assert all(not quiet.contains(item.due_at.astimezone(tz).time()) for item in scheduled)
    for before, after in pairwise(scheduled):
        assert before.due_at < after.due_at
        assert before.window_ends_at <= after.due_at

    for item in scheduled:
        times = reminder_times(
            due_at=item.due_at,
            window_ends_at=item.window_ends_at,
            reminders=reminders,
            quiet_hours=quiet,
            time_zone=zone,
        )
        assert len(times) <= reminders.max
        previous = item.due_at
        for moment in times:
            assert moment.tzinfo is UTC
            assert not quiet.contains(moment.astimezone(tz).time())
            assert moment - previous >= timedelta(minutes=reminders.after_minutes)
            assert moment < item.window_ends_at
            previous = moment


clock_times = st.builds(time, hour=st.integers(0, 23), minute=st.integers(0, 59))


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    start=clock_times,
    end=clock_times,
    zone=st.sampled_from(ZONES),
)
def test_next_outside_quiet_hours_is_the_end_of_the_quiet_period(
    moment: datetime, start: time, end: time, zone: str
) -> None:
    tz = ZoneInfo(zone)
    quiet = QuietHours(start=start.strftime("%H:%M"), end=end.strftime("%H:%M"))

    result = next_outside_quiet_hours(moment, quiet, zone)

    assert not quiet.contains(result.astimezone(tz).time())
    if not quiet.contains(moment.astimezone(tz).time()):
        assert result == moment
        return
    # Under 25 h, except when an end inside a spring gap is shifted into quiet hours (see above).
    assert moment < result < moment + timedelta(hours=49)
    if result.astimezone(tz).time() == end:  # not an end moved forward by a spring gap
        span = result - moment
        assert all(quiet.contains((moment + span * i / 8).astimezone(tz).time()) for i in range(8))
