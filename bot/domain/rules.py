"""Escalation rules: from a patient's answers to findings with a severity.

The protocol file holds the rules as data (thresholds, flags, days); this module only evaluates
them, with plain comparisons and never ``eval``, so a clinician's change to a threshold cannot
change what code runs. Everything here is pure: the caller loads the answers, calls one of the
``evaluate_*`` functions and turns each :class:`Finding` into an alert (one open alert per
patient and rule is the caller's job).

Four entry points match the four moments something can go wrong:

* :func:`evaluate_answers` — the patient just answered (a check-in question or a free note);
* :func:`evaluate_missed` — a check-in window closed unanswered;
* :func:`evaluate_blocked` — Telegram says the patient blocked the bot;
* :func:`evaluate_unheard_media` — the patient sent a voice note or video nobody can parse.

Answer-driven rules fire only on the *new* observations: an answer that already raised an alert
which staff resolved must never raise it again when the next answer arrives. Older answers are
still read, as the baseline, the previous value or the trend.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from bot.domain.protocol import (
    BotBlockedRule,
    Indication,
    InsufficientReliefRule,
    MissedInRowRule,
    NewOpioidRule,
    Protocol,
    RedFlagRule,
    ReliefEndedRule,
    RiseOverBaselineRule,
    RiseRule,
    Rule,
    Severity,
    ThresholdRule,
    UnclearAnswerRule,
    UnheardMediaRule,
    WorseningRule,
)
from bot.domain.relief import derive_relief

__all__ = [
    "Evidence",
    "Finding",
    "History",
    "Observation",
    "baseline_of",
    "evaluate_answers",
    "evaluate_blocked",
    "evaluate_missed",
    "evaluate_unheard_media",
    "most_severe",
]

BASELINE = "baseline"
"""``Evidence.reference_source``: the pre-procedure pain (patient at consent or staff)."""
DAY1 = "day1"
"""``Evidence.reference_source``: no baseline, so the day-1 value stood in (the alert says so)."""
PREVIOUS = "previous"
"""``Evidence.reference_source``: the value at the previous check-in (trend rules)."""
LOWEST_EARLIER = "lowest_earlier"
"""``Evidence.reference_source``: the lowest value at an earlier check-in (rise rules)."""


@dataclass(frozen=True)
class Observation:
    """One saved answer as the rules see it."""

    checkin_id: str | None
    """Protocol check-in id; None for a note outside a check-in."""
    question_id: str | None
    """Protocol question id; None for a note. A red-flag id (``"R2"``) for the yes/no question
    the bot asks when free text mentions a flag doubtfully (that question is not in the
    protocol's question list)."""
    day: int
    """Calendar days since the procedure (0 = procedure day)."""
    value: int | None
    """Scale value / option value / yes=1 no=0; None when not understood or free text."""
    flags: frozenset[str] = frozenset()
    """Red flags reported by this answer (ticked, answered yes, or read in free text)."""
    unclear: bool = False
    """A red-flag question still unclear after the one re-ask."""
    items: frozenset[str] = frozenset()
    """What a multi-choice answer chose (the painkiller classes taken; empty: none)."""


@dataclass(frozen=True)
class History:
    """Everything the rules may read about one episode."""

    indication: Indication
    baseline: int | None
    """Pre-procedure pain (patient at consent or staff at enrolment); None when never given."""
    observations: tuple[Observation, ...]
    """Chronological, INCLUDING the new ones passed to :func:`evaluate_answers`."""
    missed_in_row: int = 0
    blocked: bool = False


@dataclass(frozen=True)
class Evidence:
    """What staff must see: which answer, which value, against what."""

    question_id: str | None
    flag: str | None
    value: int | None
    day: int
    reference: int | None = None
    """The baseline or previous value compared against."""
    reference_source: str | None = None
    """``"baseline"``, ``"day1"`` (no baseline: the day-1 value was used — the alert must say
    so) or ``"previous"``."""
    items: tuple[str, ...] = ()
    """What a multi-choice answer chose (the painkiller classes of a new opioid)."""


@dataclass(frozen=True)
class Finding:
    """One rule that fired, how bad it is, and the answers that made it fire."""

    rule_id: str
    severity: Severity
    evidence: tuple[Evidence, ...]


def evaluate_answers(
    protocol: Protocol, history: History, new: Sequence[Observation]
) -> list[Finding]:
    """Findings raised by the answers just saved, most severe first, one per rule.

    Only ``new`` can trigger a rule; the rest of ``history.observations`` is context (baseline,
    previous values, trend). ``new`` must also be in ``history.observations``, at the end.
    """
    checks = [
        (rule, _answer_evidence(rule, protocol, history, new))
        for rule in _applicable(protocol, history)
    ]
    return _findings(protocol, checks)


def evaluate_missed(protocol: Protocol, history: History) -> list[Finding]:
    """Findings raised by unanswered check-ins in a row (``missed_in_row`` rules).

    Fires whenever the count is reached or passed, so a patient who stays silent after staff
    resolved the first alert is raised again at the next missed check-in. The evidence's
    ``day`` is the day of the last answer (0 when none): when the patient was last heard from.
    """
    checks: list[tuple[Rule, tuple[Evidence, ...]]] = []
    for rule in _applicable(protocol, history):
        if isinstance(rule, MissedInRowRule) and history.missed_in_row >= rule.count:
            evidence = Evidence(None, None, history.missed_in_row, _last_day(history))
            checks.append((rule, (evidence,)))
    return _findings(protocol, checks)


def evaluate_blocked(protocol: Protocol, history: History) -> list[Finding]:
    """Findings raised when the patient blocked the bot: the follow-up is silent from now on.

    A blocked bot means no red flag can reach us any more, so staff must call the patient.
    """
    checks: list[tuple[Rule, tuple[Evidence, ...]]] = []
    if history.blocked:
        for rule in _applicable(protocol, history):
            if isinstance(rule, BotBlockedRule):
                checks.append((rule, (Evidence(None, None, None, _last_day(history)),)))
    return _findings(protocol, checks)


def evaluate_unheard_media(protocol: Protocol, history: History, *, day: int) -> list[Finding]:
    """Findings raised by a voice note or video the bot cannot read.

    Such a message may hold a red flag in words no parser saw, so a human must listen to it.
    """
    checks: list[tuple[Rule, tuple[Evidence, ...]]] = []
    for rule in _applicable(protocol, history):
        if isinstance(rule, UnheardMediaRule):
            checks.append((rule, (Evidence(None, None, None, day),)))
    return _findings(protocol, checks)


def baseline_of(protocol: Protocol, history: History) -> tuple[int | None, str | None]:
    """The reference pain of the tracked question and where it came from.

    The pre-procedure baseline when known; else the day-1 value of the tracked question
    (docs/clinical.md §3: without a baseline, the day-1 value is used and the alert says so), source
    ``"day1"``; else ``(None, None)`` and rules needing a baseline cannot fire.
    """
    return _baseline_for(protocol.tracked_question, history)


def most_severe(findings: Sequence[Finding]) -> Severity | None:
    """The most pressing severity among ``findings`` (None when there are none)."""
    if not findings:
        return None
    return min((finding.severity for finding in findings), key=lambda severity: severity.rank)


def _applicable(protocol: Protocol, history: History) -> list[Rule]:
    return protocol.rules_for(history.indication)


def _findings(protocol: Protocol, checks: list[tuple[Rule, tuple[Evidence, ...]]]) -> list[Finding]:
    """Rules with evidence → findings, most severe first, then in protocol order."""
    order = {rule.id: index for index, rule in enumerate(protocol.rules)}
    findings = [Finding(rule.id, rule.severity, evidence) for rule, evidence in checks if evidence]
    return sorted(findings, key=lambda f: (f.severity.rank, order.get(f.rule_id, len(order))))


def _last_day(history: History) -> int:
    return history.observations[-1].day if history.observations else 0


def _answer_evidence(
    rule: Rule, protocol: Protocol, history: History, new: Sequence[Observation]
) -> tuple[Evidence, ...]:
    """Why an answer-driven rule fires on ``new`` (empty: it does not, or is not answer-driven)."""
    if isinstance(rule, RedFlagRule):
        return _red_flag(rule, new)
    if isinstance(rule, ThresholdRule):
        return _threshold(rule, new)
    if isinstance(rule, RiseOverBaselineRule):
        return _rise_over_baseline(rule, history, new)
    if isinstance(rule, RiseRule):
        return _rise(rule, history, new)
    if isinstance(rule, InsufficientReliefRule):
        return _insufficient_relief(rule, history, new)
    if isinstance(rule, WorseningRule):
        return _worsening(rule, history, new)
    if isinstance(rule, UnclearAnswerRule):
        return _unclear(rule, protocol, new)
    if isinstance(rule, NewOpioidRule):
        return _new_opioid(rule, protocol, history, new)
    if isinstance(rule, ReliefEndedRule):
        return _relief_ended(rule, protocol, history, new)
    return ()  # missed_in_row, bot_blocked, unheard_media: other events, other entry points


def _red_flag(rule: RedFlagRule, new: Sequence[Observation]) -> tuple[Evidence, ...]:
    """Each new answer that reports one of the rule's flags, one evidence per flag."""
    evidence = []
    for obs in new:
        for flag in rule.flags:
            if flag in obs.flags:
                evidence.append(Evidence(obs.question_id, flag, obs.value, obs.day))
    return tuple(evidence)


# The only operators a protocol may name (pydantic already refuses any other string).
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


def _threshold(rule: ThresholdRule, new: Sequence[Observation]) -> tuple[Evidence, ...]:
    """A new value of the question beyond the threshold, inside the rule's day window."""
    compare = _COMPARE[rule.op]
    evidence = []
    for obs in new:
        if obs.question_id != rule.question or obs.value is None:
            continue
        if rule.from_day is not None and obs.day < rule.from_day:
            continue
        if rule.until_day is not None and obs.day > rule.until_day:
            continue
        if compare(obs.value, rule.value):
            evidence.append(Evidence(obs.question_id, None, obs.value, obs.day))
    return tuple(evidence)


def _baseline_for(question_id: str, history: History) -> tuple[int | None, str | None]:
    """Baseline, else the (last) day-1 value of ``question_id``, else nothing."""
    if history.baseline is not None:
        return history.baseline, BASELINE
    day1 = [
        obs.value
        for obs in history.observations
        if obs.question_id == question_id and obs.day == 1 and obs.value is not None
    ]
    if day1:
        # The last one: a patient who corrected their day-1 answer meant the correction.
        return day1[-1], DAY1
    return None, None


def _rise_over_baseline(
    rule: RiseOverBaselineRule, history: History, new: Sequence[Observation]
) -> tuple[Evidence, ...]:
    """A new value at least ``by`` above the patient's own reference, from ``from_day``."""
    reference, source = _baseline_for(rule.question, history)
    if reference is None:
        return ()
    evidence = []
    for obs in new:
        if obs.question_id != rule.question or obs.value is None or obs.day < rule.from_day:
            continue
        if obs.value >= reference + rule.by:
            evidence.append(Evidence(obs.question_id, None, obs.value, obs.day, reference, source))
    return tuple(evidence)


def _in_days(day: int, from_day: int, until_day: int | None) -> bool:
    return day >= from_day and (until_day is None or day <= until_day)


def _rise(rule: RiseRule, history: History, new: Sequence[Observation]) -> tuple[Evidence, ...]:
    """A new value at least ``by`` above the lowest value of an earlier check-in, both inside
    the rule's days ("A little" on day 0, "A lot" on day 2).

    One value per check-in, the last given there (a correction counts, and changing one's
    answer within a check-in is no rise); notes and not-understood answers are skipped. The
    value must also be higher than at the previous check-in: "A lot" again the next day is
    the same finding, not a new one.
    """
    last_per_checkin: dict[str, Observation] = {}
    for obs in history.observations:
        if obs.question_id != rule.question or obs.checkin_id is None or obs.value is None:
            continue
        if not _in_days(obs.day, rule.from_day, rule.until_day):
            continue
        last_per_checkin.pop(obs.checkin_id, None)
        last_per_checkin[obs.checkin_id] = obs
    series = [(obs, obs.value) for obs in last_per_checkin.values() if obs.value is not None]
    evidence = []
    for position, (obs, value) in enumerate(series):
        if obs not in new or position == 0:
            continue
        lowest = min(earlier for _, earlier in series[:position])
        # It must rise at this answer: still "A lot" the day after is the same finding.
        if value > series[position - 1][1] and value >= lowest + rule.by:
            evidence.append(Evidence(obs.question_id, None, value, obs.day, lowest, LOWEST_EARLIER))
    return tuple(evidence)


def _insufficient_relief(
    rule: InsufficientReliefRule, history: History, new: Sequence[Observation]
) -> tuple[Evidence, ...]:
    """At the named check-in, pain not ``percent`` % below the reference: a non-responder.

    Without a pre-procedure baseline the day-1 value stands in (source ``"day1"``), as for
    every baseline in docs/clinical.md; with neither, the rule cannot fire. Integer arithmetic
    (value * 100 > reference * (100 - percent)) so 30 % of 7 is exact.
    """
    reference, source = _baseline_for(rule.question, history)
    if reference is None:
        return ()
    evidence = []
    for obs in new:
        if obs.question_id != rule.question or obs.checkin_id != rule.checkin:
            continue
        if obs.value is None:
            continue
        if obs.value * 100 > reference * (100 - rule.percent):
            evidence.append(Evidence(obs.question_id, None, obs.value, obs.day, reference, source))
    return tuple(evidence)


def _worsening(
    rule: WorseningRule, history: History, new: Sequence[Observation]
) -> tuple[Evidence, ...]:
    """The value rose strictly at each of the last ``consecutive`` check-ins where it was given.

    One value per check-in (the last answer given there, so a correction counts); notes and
    not-understood answers are skipped. The newest value must be one of ``new`` so a trend
    raises its alert once, when it appears.
    """
    last_per_checkin: dict[str, tuple[Observation, int]] = {}
    for obs in history.observations:
        if obs.question_id != rule.question or obs.checkin_id is None or obs.value is None:
            continue
        # Re-inserting moves the check-in to the end: its place is that of its last answer.
        last_per_checkin.pop(obs.checkin_id, None)
        last_per_checkin[obs.checkin_id] = (obs, obs.value)
    series = list(last_per_checkin.values())[-(rule.consecutive + 1) :]
    if len(series) < rule.consecutive + 1:
        return ()
    newest = series[-1][0]
    if newest not in new or newest.day < rule.from_day:
        return ()
    if rule.until_day is not None and newest.day > rule.until_day:
        return ()
    steps = list(pairwise(series))
    if not all(after > before for (_, before), (_, after) in steps):
        return ()
    return tuple(
        Evidence(obs.question_id, None, after, obs.day, before, PREVIOUS)
        for (_, before), (obs, after) in steps
    )


def _unclear(
    rule: UnclearAnswerRule, protocol: Protocol, new: Sequence[Observation]
) -> tuple[Evidence, ...]:
    """A red-flag question still not understood after the one re-ask.

    Only questions that can reveal a red flag count (docs/clinical.md §2: "unparseable red-flag answer
    → re-ask once, then REVIEW"); an unclear "interested in a new treatment?" is no alarm. The
    yes/no question the bot asks after a doubtful free-text mention is not in the protocol's
    question list: it is a yes_no red-flag question. Any other unknown question id is treated
    the same way, because an unclear answer about an unknown red flag must reach a human.
    """
    question_types: dict[str, tuple[str, bool]] = {
        q.id: (q.type, bool(protocol.flags_of(q))) for q in protocol.questions
    }
    evidence = []
    for obs in new:
        if not obs.unclear:
            continue
        question_type, reveals_flag = question_types.get(obs.question_id or "", ("yes_no", True))
        if reveals_flag and question_type in rule.question_types:
            flag = obs.question_id if obs.question_id in protocol.red_flags else None
            evidence.append(Evidence(obs.question_id, flag, obs.value, obs.day))
    return tuple(evidence)


# --- Outcome rules (issue 16: painkillers, relief duration) ---------------------------------


def _new_opioid(
    rule: NewOpioidRule, protocol: Protocol, history: History, new: Sequence[Observation]
) -> tuple[Evidence, ...]:
    """The first follow-up painkiller answer naming an opioid, when the baseline named none.

    One value per answer: the painkiller question's observations (notes and unclear answers
    skipped). The baseline is the last answer to a ``baseline`` painkiller question; without one
    nobody knows what "before" was and the rule stays silent.
    """
    kinds = {q.id: q.baseline for q in protocol.questions if q.type == "painkillers"}
    opioid = set(rule.classes)
    baseline: frozenset[str] | None = None
    earlier_opioid = False
    for obs in history.observations:
        if obs.question_id not in kinds or obs.unclear or obs in new:
            continue
        if kinds[obs.question_id]:
            baseline = obs.items
        elif opioid & obs.items:
            earlier_opioid = True
    for obs in new:
        if obs.question_id in kinds and kinds[obs.question_id] and not obs.unclear:
            baseline = obs.items
    if baseline is None or opioid & baseline or earlier_opioid:
        return ()
    for obs in new:
        if obs.question_id not in kinds or kinds[obs.question_id] or obs.unclear:
            continue
        started = opioid & obs.items
        if started:
            return (
                Evidence(obs.question_id, None, obs.value, obs.day, items=tuple(sorted(obs.items))),
            )
    return ()


def _relief_ended(
    rule: ReliefEndedRule, protocol: Protocol, history: History, new: Sequence[Observation]
) -> tuple[Evidence, ...]:
    """Relief ended after ``after_day``, confirmed by one of ``new``: once per episode.

    One value per check-in (its last understood answer), as the trend rules read them; the end
    is confirmed at one check-in only, so the card is raised once however long pain stays back.
    """
    if protocol.relief is None:
        return ()
    reference, source = _baseline_for(rule.question, history)
    if reference is None:
        return ()
    last_per_checkin: dict[str, Observation] = {}
    for obs in history.observations:
        if obs.question_id != rule.question or obs.checkin_id is None or obs.value is None:
            continue
        last_per_checkin.pop(obs.checkin_id, None)
        last_per_checkin[obs.checkin_id] = obs
    series = list(last_per_checkin.values())
    relief = derive_relief(
        protocol.relief,
        baseline=reference,
        values=[(obs.day, obs.value) for obs in series if obs.value is not None],
    )
    if relief.ended_day is None or relief.confirmed_day is None:
        return ()
    if relief.ended_day <= rule.after_day:
        return ()
    confirming = next(obs for obs in series if obs.day == relief.confirmed_day)
    if confirming not in new:
        return ()
    ended = next(obs for obs in series if obs.day == relief.ended_day)
    return (Evidence(ended.question_id, None, ended.value, ended.day, reference, source),)
