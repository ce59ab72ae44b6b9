"""What ``/patient`` says about outcomes (issue 16): painkiller use and the relief status.

Two lines under the patient's header, read from the same answers as the timeline: the
painkillers at each time point they were asked, and whether relief came, is kept or ended
(the protocol's ``relief:`` thresholds, as the outcomes report and the relief rule read them).
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.db.models import Answer
from bot.domain.protocol import Protocol
from bot.domain.relief import derive_relief, month_of
from bot.i18n import t
from bot.services.painkiller_questions import describe_use


def _day(language: str, day: int) -> str:
    return t(language, "D+{day}", day=day)


def painkiller_line(protocol: Protocol, answers: Iterable[Answer], language: str) -> str | None:
    """'Painkillers: before the procedure none · D+7 paracetamol — 3 days out of 7', or None."""
    kinds = {q.id: q.baseline for q in protocol.questions if q.type == "painkillers"}
    latest: dict[int | None, tuple[bool, int, Answer]] = {}
    for answer in answers:
        if answer.question_id in kinds and answer.status == "ok":
            latest[answer.checkin_id] = (kinds[answer.question_id], answer.day, answer)
    if not latest:
        return None
    parts = []
    for baseline, day, answer in sorted(latest.values(), key=lambda item: (not item[0], item[1])):
        when = t(language, "before the procedure") if baseline else _day(language, day)
        use = describe_use(answer.choices or (), answer.value if answer.choices else None, language)
        parts.append(f"{when} {use}")
    return t(language, "Painkillers: {uses}", uses=" · ".join(parts))


def relief_line(
    protocol: Protocol, *, baseline: int | None, answers: Iterable[Answer], language: str
) -> str | None:
    """'Relief: since D+7, kept (last answer D+42)' / '... ended at D+91 (month 3)', or None."""
    if protocol.relief is None:
        return None
    if baseline is None:
        return t(language, "Relief: unknown (no baseline pain)")
    per_checkin: dict[int, tuple[int, int]] = {}
    for answer in answers:
        if (
            answer.question_id == protocol.tracked_question
            and answer.status == "ok"
            and answer.value is not None
            and answer.checkin_id is not None
        ):
            per_checkin[answer.checkin_id] = (answer.day, answer.value)
    if not per_checkin:
        return None
    relief = derive_relief(protocol.relief, baseline=baseline, values=sorted(per_checkin.values()))
    if relief.onset_day is None:
        return t(language, "Relief: not reached yet (30 % or 2 points below baseline)")
    if relief.ended_day is None:
        return t(
            language,
            "Relief: since {onset}, kept (last answer {last})",
            onset=_day(language, relief.onset_day),
            last=_day(language, relief.last_day or relief.onset_day),
        )
    return t(
        language,
        "Relief: from {onset}, ended at {end} (month {month})",
        onset=_day(language, relief.onset_day),
        end=_day(language, relief.ended_day),
        month=month_of(relief.ended_day),
    )
