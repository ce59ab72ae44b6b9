"""Which red flag is asked at which check-in, and whether each is asked in time.

Each red flag carries ``earliest_day``, the first day it can be present (docs/clinical.md §2). A
flag must be asked, by a checklist or a yes/no, at the first check-in falling on that day or
later: a clot sign first asked at day 3 is two days of silence. ``protocol check`` warns about
each flag asked late; ``protocol show`` prints the table so a physician sees what is asked when.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.protocol import CheckInDef, Indication, Protocol

#: The shortest month, so a check-in N months after the procedure is never counted too late.
_DAYS_IN_A_MONTH = 28


def checkin_day(checkin: CheckInDef) -> int:
    """The earliest day after the procedure a check-in can fall on."""
    return checkin.offset.days + checkin.offset.months * _DAYS_IN_A_MONTH


@dataclass(frozen=True)
class FlagCoverage:
    """One red flag: from which day it can be present, and the check-ins that ask it."""

    flag: str
    earliest_day: int | None
    asked_at: frozenset[str]


def in_day_order(protocol: Protocol, indication: Indication) -> list[CheckInDef]:
    """The indication's check-ins, earliest first (the file order need not be)."""
    return sorted(protocol.checkins_for(indication), key=lambda c: (checkin_day(c), c.local_time))


def flag_coverage(protocol: Protocol, indication: Indication) -> list[FlagCoverage]:
    """Every red flag, in file order, with the check-ins asking it for this indication."""
    asked: dict[str, set[str]] = {flag: set() for flag in protocol.red_flags}
    for checkin in protocol.checkins_for(indication):
        for question in protocol.questions_for(checkin.id, indication):
            for flag in protocol.flags_of(question):
                asked.setdefault(flag, set()).add(checkin.id)
    return [
        FlagCoverage(flag, protocol.red_flags[flag].earliest_day, frozenset(checkins))
        for flag, checkins in asked.items()
        if flag in protocol.red_flags
    ]


def late_red_flags(protocol: Protocol) -> list[tuple[str, str]]:
    """Each red flag first asked after the first check-in where it can be present, as
    (path, message); empty when every flag is asked in time, for every indication."""
    late: dict[tuple[str, str], list[Indication]] = {}
    for indication in Indication:
        checkins = in_day_order(protocol, indication)
        for coverage in flag_coverage(protocol, indication):
            message = _lateness(coverage, checkins)
            if message is not None:
                late.setdefault((coverage.flag, message), []).append(indication)
    warnings = []
    never_asked = set(protocol.red_flags)
    for indication in Indication:
        never_asked -= {c.flag for c in flag_coverage(protocol, indication) if c.asked_at}
    for flag in protocol.red_flags:
        path = f"red_flags.{flag}"
        if protocol.red_flags[flag].earliest_day is None:
            warnings.append(
                (path, f"red flag {flag} has no earliest_day: when it is first asked is unchecked")
            )
        if flag in never_asked:
            warnings.append(
                (path, f"red flag {flag} is asked at no check-in (only free text can reveal it)")
            )
        for (late_flag, message), indications in late.items():
            if late_flag == flag:
                whom = (
                    "" if len(indications) == len(Indication) else " for " + ", ".join(indications)
                )
                warnings.append((f"{path}.earliest_day", f"{message}{whom}"))
    return warnings


def _lateness(coverage: FlagCoverage, checkins: list[CheckInDef]) -> str | None:
    """Why a flag is asked too late among these check-ins (None: in time, or never asked)."""
    if coverage.earliest_day is None or not coverage.asked_at:
        return None
    due = next((c for c in checkins if checkin_day(c) >= coverage.earliest_day), None)
    if due is None:
        return (
            f"red flag {coverage.flag} can be present from day {coverage.earliest_day}, "
            "but no check-in falls on that day or later"
        )
    if due.id in coverage.asked_at:
        return None
    later = [c.id for c in checkins if checkin_day(c) >= coverage.earliest_day]
    first = next((c for c in later if c in coverage.asked_at), None)
    when = f"first asked at {first}" if first else "not asked on that day or later"
    return (
        f"red flag {coverage.flag} can be present from day {coverage.earliest_day} but is "
        f"{when}: ask it at {due.id} (in a checklist's flags or as a yes/no's flag)"
    )
