"""Due times of an episode's check-ins: local wall-clock time, DST, quiet hours, months.

A protocol says "day 1 at 10:00"; the patient lives by the clock on the wall, so every due time
is computed as a local wall-clock time in the episode's zone and only then stored in UTC. That
keeps 10:00 at 10:00 across a DST change, which adding 24 h in UTC would not.

Rules for local times that do not exist or exist twice (the only DST cases that need a choice):

* A time in the spring gap (e.g. 02:30 in Paris on the last Sunday of March) is moved forward by
  the length of the gap (02:30 → 03:30). This is what :pep:`495` gives for ``fold=0``.
* A time in the autumn fold (02:30 happens twice) is its first occurrence (``fold=0``, still on
  summer time).

The protocol check already forbids check-in times inside quiet hours, so with the usual quiet
hours (21:00-08:00) neither case happens for check-ins; the rules matter for odd quiet-hour
bounds and keep the functions total. Arithmetic and comparisons are done in UTC: two aware
datetimes that share a ``ZoneInfo`` are subtracted and compared by their wall-clock fields,
ignoring the offset, which is wrong across a DST change.

Pure: no I/O, no clock; the caller passes every instant.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from bot.domain.protocol import CheckInDef, Indication, Protocol, QuietHours, Reminders
from bot.domain.states import CheckInStatus

CancelReason = Literal["quiet_hours", "before_consent"]


@dataclass(frozen=True)
class PlannedCheckIn:
    """One check-in of an episode, ready to be stored as a row.

    Attributes:
        checkin_id: The protocol's check-in id.
        due_at: When it is sent (aware, UTC).
        window_ends_at: When an unanswered check-in becomes missed (aware, UTC): ``due_at`` plus
            ``window_hours``, but never after the next check-in's ``due_at`` (quiet-hour
            cancellations aside), so at most one check-in is open at a time.
        status: ``cancelled`` rows are kept so staff see why a time point has no answer.
        reason: Why cancelled: ``quiet_hours`` (the day-0 evening pushed into quiet hours by a
            late procedure) or ``before_consent`` (due before the patient consented).
    """

    checkin_id: str
    due_at: datetime
    window_ends_at: datetime
    status: CheckInStatus
    reason: CancelReason | None = None


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with a time zone), got {value!r}")


def add_months(day: date, months: int) -> date:
    """The same calendar day ``months`` later, clamped to the month's end.

    "Month 3" in a follow-up means the same date three months on (1 Dec → 1 Mar), not 90 days;
    31 Jan + 1 month is the last day of February because a month may be shorter.
    """
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _local_to_utc(day: date, wall: time, tz: ZoneInfo, *, fold: int = 0) -> datetime:
    """The UTC instant of wall-clock ``wall`` on ``day`` in ``tz``.

    Ambiguous times take ``fold`` (0 = first occurrence). Non-existent times are moved forward by
    the gap whatever ``fold`` says: :pep:`495` maps a gap time with ``fold=1`` to an instant
    *before* the transition, which would break chronological order.
    """
    first = datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)
    if fold == 0:
        return first
    second = datetime.combine(day, wall, tzinfo=tz).replace(fold=1).astimezone(UTC)
    return max(first, second)


def local_due_time(checkin: CheckInDef, *, procedure_at: datetime, tz: ZoneInfo) -> datetime:
    """When ``checkin`` falls due, as an aware datetime in ``tz``.

    The date is the procedure's local date plus ``offset.months`` (clamped, see
    :func:`add_months`) then ``offset.days``; the time is the check-in's ``time`` (see the module
    docstring for DST gaps and folds). The result is never earlier than the procedure plus
    ``min_hours_after_procedure`` elapsed hours: the day-0 evening check-in after a late
    procedure comes 3 real hours after it, and no check-in is ever due before the procedure.
    """
    _require_aware("procedure_at", procedure_at)
    procedure_day = procedure_at.astimezone(tz).date()
    day = add_months(procedure_day, checkin.offset.months) + timedelta(days=checkin.offset.days)
    wall = _local_to_utc(day, checkin.local_time, tz)
    earliest = procedure_at.astimezone(UTC) + timedelta(hours=checkin.min_hours_after_procedure)
    return max(wall, earliest).astimezone(tz)


def day_number(procedure_at: datetime, moment: datetime, time_zone: str) -> int:
    """Calendar days from the procedure to ``moment`` in local time (the procedure day is 0).

    Rules such as "from day 3" count days as the patient does: 23:00 and 08:00 the next
    morning are one day apart although only 9 hours passed.
    """
    _require_aware("procedure_at", procedure_at)
    _require_aware("moment", moment)
    tz = ZoneInfo(time_zone)
    return (moment.astimezone(tz).date() - procedure_at.astimezone(tz).date()).days


def next_outside_quiet_hours(moment: datetime, quiet_hours: QuietHours, time_zone: str) -> datetime:
    """``moment`` (in UTC) when messages are allowed then, else the end of this quiet period.

    The end is the first instant after ``moment`` whose local time is ``quiet_hours.end`` and
    is not itself quiet: on the autumn fold the same wall time comes twice, and from the second
    pass through the quiet hours the first occurrence is already past. An end inside a spring
    gap is moved forward by the gap, so the result is at worst a little late, never early (and
    a day later if that shifted time is still quiet, which only near-24 h quiet hours allow).
    """
    _require_aware("moment", moment)
    tz = ZoneInfo(time_zone)
    instant = moment.astimezone(UTC)
    local = instant.astimezone(tz)
    if not quiet_hours.contains(local.time()):
        return instant
    for days_ahead in range(3):
        day = local.date() + timedelta(days=days_ahead)
        for fold in (0, 1):
            end = _local_to_utc(day, quiet_hours.end_time, tz, fold=fold)
            if end > instant and not quiet_hours.contains(end.astimezone(tz).time()):
                return end
    raise AssertionError("unreachable: quiet hours last less than a day")


def reminder_times(
    *,
    due_at: datetime,
    window_ends_at: datetime,
    reminders: Reminders,
    quiet_hours: QuietHours,
    time_zone: str,
) -> list[datetime]:
    """When to nudge a patient who has not answered (UTC), given no answer ever comes.

    Each reminder comes ``after_minutes`` after the previous message (the check-in itself, then
    the last reminder); one that would fall in quiet hours waits for their end, and one that
    would not be sent strictly before the window closes is dropped with all later ones: a
    reminder for a check-in that can no longer be answered only confuses. At most
    ``reminders.max``.
    """
    _require_aware("due_at", due_at)
    _require_aware("window_ends_at", window_ends_at)
    window_end = window_ends_at.astimezone(UTC)
    step = timedelta(minutes=reminders.after_minutes)
    times: list[datetime] = []
    previous = due_at.astimezone(UTC)
    for _ in range(reminders.max):
        candidate = next_outside_quiet_hours(previous + step, quiet_hours, time_zone)
        if candidate >= window_end:
            break
        times.append(candidate)
        previous = candidate
    return times


def plan_checkins(
    protocol: Protocol,
    *,
    procedure_at: datetime,
    time_zone: str,
    indication: Indication,
    consented_at: datetime | None = None,
) -> list[PlannedCheckIn]:
    """Every check-in of an episode, in protocol order, with its due time and window.

    Check-ins meant for other indications are left out. A check-in due inside quiet hours (the
    day-0 evening after a late procedure) is ``cancelled`` with reason ``quiet_hours``: a
    patient is not woken for it, and the next morning's check-in asks again. A check-in due
    before ``consented_at`` is ``cancelled`` with reason ``before_consent``, not missed, so it
    does not count for non-response rules. A moved procedure is simply planned again.

    Raises:
        ValueError: A datetime is naive, or two check-ins that are not cancelled for quiet hours
            would fall due at the same time or out of protocol order (an invalid protocol).
    """
    _require_aware("procedure_at", procedure_at)
    if consented_at is not None:
        _require_aware("consented_at", consented_at)
    tz = ZoneInfo(time_zone)
    wanted = [
        checkin
        for checkin in protocol.checkins
        if checkin.indications is None or indication in checkin.indications
    ]
    due = [
        local_due_time(checkin, procedure_at=procedure_at, tz=tz).astimezone(UTC)
        for checkin in wanted
    ]
    quiet = [protocol.quiet_hours.contains(at.astimezone(tz).time()) for at in due]

    # Order is checked before consent is applied, so the same protocol and procedure either
    # always plan or always fail, whenever the patient consents.
    timeline = [
        (checkin, at)
        for checkin, at, is_quiet in zip(wanted, due, quiet, strict=True)
        if not is_quiet
    ]
    for (before, before_at), (after, after_at) in pairwise(timeline):
        if after_at <= before_at:
            raise ValueError(
                f"check-in {after.id!r} (due {after_at.isoformat()}) does not come after "
                f"{before.id!r} (due {before_at.isoformat()}); check the offsets and times "
                f"of protocol {protocol.id!r} v{protocol.version}"
            )
    timeline_due = [at for _, at in timeline]  # strictly increasing, as checked above

    planned: list[PlannedCheckIn] = []
    for checkin, at, is_quiet in zip(wanted, due, quiet, strict=True):
        window_ends_at = at + timedelta(hours=checkin.window_hours)
        later = [next_at for next_at in timeline_due if next_at > at]
        if later:
            window_ends_at = min(window_ends_at, later[0])
        reason: CancelReason | None = None
        if is_quiet:
            reason = "quiet_hours"
        elif consented_at is not None and at < consented_at:
            reason = "before_consent"
        planned.append(
            PlannedCheckIn(
                checkin_id=checkin.id,
                due_at=at,
                window_ends_at=window_ends_at,
                status=CheckInStatus.SCHEDULED if reason is None else CheckInStatus.CANCELLED,
                reason=reason,
            )
        )
    return planned
