"""The follow-up protocol as frozen, validated data (schedules/*.yaml).

Clinicians write and approve these files; the code only reads them. Everything a unit may want
to change without a programmer lives here: time points, questions and their wording in every
language, red flags and the phrases that reveal them in free text, escalation rules and their
thresholds, safety advice, quiet hours, reminders.

Validation happens in two passes so every error can name its place in the file:
pydantic checks shapes (unknown keys, wrong types), then :func:`check_protocol` checks meaning
(references, translations, quiet hours, duplicates, every red flag covered by a rule).
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Iterator
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator


class Severity(StrEnum):
    """How fast staff must act; ordered from most to least pressing."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    REVIEW = "review"

    @property
    def rank(self) -> int:
        """0 for emergency, 2 for review: sort keys for 'most urgent first'."""
        return list(Severity).index(self)


class Indication(StrEnum):
    """Why the knee was treated; some questions apply only to some indications."""

    OSTEOARTHRITIS = "osteoarthritis"
    CHRONIC_PAIN = "chronic_pain"
    BEFORE_KNEE_REPLACEMENT = "before_knee_replacement"
    AFTER_KNEE_REPLACEMENT = "after_knee_replacement"


class KneeSide(StrEnum):
    """The treated knee."""

    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalizedText(RootModel[dict[str, str]]):
    """A text in every language of the protocol (checked by :func:`check_protocol`)."""

    model_config = ConfigDict(frozen=True)

    def get(self, language: str, fallback: str = "en") -> str:
        """The text in ``language``, else in ``fallback``, else in any language."""
        texts = self.root
        return texts.get(language) or texts.get(fallback) or next(iter(texts.values()))


class LocalizedPhrases(RootModel[dict[str, list[str]]]):
    """Free-text phrases per language (red-flag words, answer synonyms)."""

    model_config = ConfigDict(frozen=True)

    def get(self, language: str) -> list[str]:
        """Phrases of ``language`` (empty when none)."""
        return self.root.get(language, [])

    def all(self) -> list[str]:
        """Phrases of every language: a French patient may type English words and vice versa."""
        return [phrase for phrases in self.root.values() for phrase in phrases]


_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _parse_hhmm(value: str) -> dt.time:
    if not _HHMM.match(value):
        raise ValueError(f"expected a time as HH:MM (24 h), got {value!r}")
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


class Option(_Frozen):
    """One answer of a choice question; ``value`` is what rules and scores compute with."""

    id: str
    value: int
    label: LocalizedText
    synonyms: LocalizedPhrases = LocalizedPhrases({})
    flag: str | None = None


class RedFlag(_Frozen):
    """A warning sign: its yes/no question, its short checklist label, its free-text phrases."""

    question: LocalizedText
    label: LocalizedText
    phrases: LocalizedPhrases = LocalizedPhrases({})
    #: The first day after the procedure the sign can be present (0 = the evening of the
    #: procedure): ``protocol check`` warns when no check-in of that day or later asks it first.
    earliest_day: int | None = Field(default=None, ge=0)


QuestionType = Literal["scale", "choice", "yes_no", "checklist", "text", "photo", "painkillers"]


class Question(_Frozen):
    """A question asked in a check-in.

    ``scale``: integer ``min``..``max`` (one-tap keyboard). ``choice``: one of ``options``.
    ``yes_no``: answered yes means red flag ``flag`` when set. ``checklist``: any of the red
    flags in ``flags`` or "none of these". ``text`` and ``photo``: free, ``optional`` may skip.
    ``painkillers``: which painkiller classes were taken in the last 7 days, then on how many
    days (bot/domain/painkillers.py; ``baseline: true`` for the one asked about before the
    procedure).
    """

    id: str
    type: QuestionType
    text: LocalizedText
    #: A few words that name the question for staff ("Average pain (24 h)"): cards, views.
    label: LocalizedText | None = None
    hint: LocalizedText | None = None
    min: int = 0
    max: int = 10
    options: tuple[Option, ...] = ()
    flags: tuple[str, ...] = ()
    flag: str | None = None
    optional: bool = False
    indications: tuple[Indication, ...] | None = None
    loinc: str | None = None
    score: str | None = None
    #: A ``painkillers`` question about the week before the procedure (the opioid rule's reference).
    baseline: bool = False

    def name(self, language: str) -> str:
        """What staff read for this question: its label, else its whole text (never its id)."""
        return (self.label or self.text).get(language)


class Offset(_Frozen):
    """When a check-in is due, relative to the procedure date in the episode's time zone.

    ``days`` counts calendar days; ``months`` means the same calendar day N months later,
    clamped to the month's end (31 Jan + 1 month = 28/29 Feb).
    """

    days: int = 0
    months: int = 0


class CheckInDef(_Frozen):
    """One time point of the follow-up and the questions asked then."""

    id: str
    offset: Offset
    time: str
    min_hours_after_procedure: float = 0
    window_hours: float = Field(gt=0)
    questions: tuple[str, ...]
    message_before: str | None = None
    indications: tuple[Indication, ...] | None = None

    @field_validator("time")
    @classmethod
    def _time_is_hhmm(cls, value: str) -> str:
        _parse_hhmm(value)
        return value

    @property
    def local_time(self) -> dt.time:
        """The wall-clock time the check-in is due."""
        return _parse_hhmm(self.time)


class QuietHours(_Frozen):
    """Hours when no check-in or reminder is sent (alerts and safety advice ignore them)."""

    start: str = "21:00"
    end: str = "08:00"

    @field_validator("start", "end")
    @classmethod
    def _is_hhmm(cls, value: str) -> str:
        _parse_hhmm(value)
        return value

    def contains(self, moment: dt.time) -> bool:
        """True when the wall-clock ``moment`` is inside the quiet hours (start incl., end excl.)."""
        start, end = _parse_hhmm(self.start), _parse_hhmm(self.end)
        if start <= end:
            return start <= moment < end
        return moment >= start or moment < end

    @property
    def end_time(self) -> dt.time:
        """The wall-clock time quiet hours end."""
        return _parse_hhmm(self.end)


class Greeting(_Frozen):
    """How a check-in opens from a local time of day on ("Bonsoir" in the evening)."""

    since: str
    text: LocalizedText

    @field_validator("since")
    @classmethod
    def _is_hhmm(cls, value: str) -> str:
        _parse_hhmm(value)
        return value

    @property
    def since_time(self) -> dt.time:
        """The wall-clock time from which this greeting applies."""
        return _parse_hhmm(self.since)


class Reminders(_Frozen):
    """How the bot nudges a patient who has not answered."""

    after_minutes: int = Field(default=120, gt=0)
    max: int = Field(default=2, ge=0)


class _RuleBase(_Frozen):
    id: str
    severity: Severity
    explanation: LocalizedText
    indications: tuple[Indication, ...] | None = None


class ThresholdRule(_RuleBase):
    """The value of ``question`` compared with ``value`` (e.g. pain >= 8)."""

    kind: Literal["threshold"]
    question: str
    op: Literal[">=", ">", "<=", "<", "=="]
    value: int
    from_day: int | None = None
    until_day: int | None = None

    def fires_on(self, answer: int) -> bool:
        """True when an answer of this value meets the threshold."""
        return _COMPARISONS[self.op](answer, self.value)


_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


class RiseOverBaselineRule(_RuleBase):
    """The tracked value at least ``by`` above the patient's own baseline, from ``from_day``."""

    kind: Literal["rise_over_baseline"]
    question: str
    by: int = Field(gt=0)
    from_day: int = 0


class RiseRule(_RuleBase):
    """A value at least ``by`` above the lowest one given at an earlier check-in, and higher
    than at the previous one, all inside ``from_day``..``until_day`` (e.g. swelling up two
    levels within the first 72 h)."""

    kind: Literal["rise"]
    question: str
    by: int = Field(gt=0)
    from_day: int = 0
    until_day: int | None = None


class InsufficientReliefRule(_RuleBase):
    """At a given check-in, the tracked value not ``percent`` % below baseline (non-responder)."""

    kind: Literal["insufficient_relief"]
    question: str
    checkin: str
    percent: int = Field(gt=0, le=100)


class WorseningRule(_RuleBase):
    """The value rose at each of the last ``consecutive`` check-ins where it was asked."""

    kind: Literal["worsening"]
    question: str
    consecutive: int = Field(default=1, ge=1)
    from_day: int = 0
    #: Last day the trend matters; after it a rise is the expected course (e.g. nerves regrowing).
    until_day: int | None = None


class RedFlagRule(_RuleBase):
    """Any of ``flags`` reported: ticked, answered yes, or read in free text."""

    kind: Literal["red_flag"]
    flags: tuple[str, ...] = Field(min_length=1)


class UnclearAnswerRule(_RuleBase):
    """A red-flag question still unclear after the one re-ask: a human must look."""

    kind: Literal["unclear_answer"]
    question_types: tuple[QuestionType, ...] = ("checklist", "yes_no")


class MissedInRowRule(_RuleBase):
    """``count`` check-ins in a row went unanswered."""

    kind: Literal["missed_in_row"]
    count: int = Field(ge=1)


class BotBlockedRule(_RuleBase):
    """The patient blocked the bot: the follow-up is silent from now on."""

    kind: Literal["bot_blocked"]


class UnheardMediaRule(_RuleBase):
    """A voice note or video the bot cannot read may hold a red flag: a human must listen."""

    kind: Literal["unheard_media"]


# --- Outcome rules (issue 16: painkillers, relief duration) ---------------------------------


class NewOpioidRule(_RuleBase):
    """An opioid taken after the procedure by a patient who took none in the week before it.

    Fires once, at the first follow-up ``painkillers`` answer naming one of ``classes``, when
    the baseline ``painkillers`` answer named none of them; without a baseline answer it cannot
    fire (nobody knows what "before" was).
    """

    kind: Literal["new_opioid"]
    classes: tuple[str, ...] = ("weak_opioid", "strong_opioid")


class ReliefEndedRule(_RuleBase):
    """Relief (``relief:`` section) ended after ``after_day``: the nerves have probably regrown.

    Fires once per episode, at the check-in that confirms the end; the card names the month.
    """

    kind: Literal["relief_ended"]
    question: str
    after_day: int = Field(default=60, ge=0)


class ReliefDefinition(_Frozen):
    """When a patient has relief, and when it has ended (the usual MCID: 30 % or 2 points).

    Relief starts at the first check-in whose tracked pain is at least ``percent`` % or
    ``points`` points below baseline; it ends when pain is back within ``back_within`` points of
    baseline at ``consecutive`` check-ins in a row (the end is dated at the first of them).
    """

    percent: int = Field(gt=0, le=100)
    points: int = Field(gt=0)
    back_within: int = Field(ge=0)
    consecutive: int = Field(ge=1)


# --- end of outcome rules -------------------------------------------------------------------


Rule = Annotated[
    ThresholdRule
    | RiseOverBaselineRule
    | RiseRule
    | InsufficientReliefRule
    | WorseningRule
    | RedFlagRule
    | UnclearAnswerRule
    | MissedInRowRule
    | BotBlockedRule
    | UnheardMediaRule
    | NewOpioidRule
    | ReliefEndedRule,
    Field(discriminator="kind"),
]


class SafetyAdvice(_Frozen):
    """What the patient is told at once, per severity; ``{unit_phone}`` etc. are filled in."""

    emergency: LocalizedText
    urgent: LocalizedText
    review: LocalizedText


class EducationTopic(_Frozen):
    """An expected effect patients ask about: the words that name it, and the protocol's answer
    (what is expected, then when to call: ``{unit_phone}`` and ``{oncall_phone}`` are filled in)."""

    keywords: LocalizedPhrases
    text: LocalizedText


class Education(_Frozen):
    """Patients' questions about the expected course ("numb below the kneecap, is that
    normal?"), answered from the protocol. ``asking``: the words that make a message such a
    question (a "?" does too); ``topics``: the expected effects, by id. A message with a red
    flag never gets these answers: a red flag is never "normal"."""

    asking: LocalizedPhrases
    topics: dict[str, EducationTopic] = Field(min_length=1)


class Consent(_Frozen):
    """The consent text; a new ``version`` asks every patient to consent again."""

    version: int = Field(ge=1)
    text: LocalizedText
    details: LocalizedText


class Protocol(_Frozen):
    """A whole follow-up protocol, as approved by the unit."""

    id: str
    version: int = Field(ge=1)
    title: LocalizedText
    approved_by: str | None = None
    approved_on: dt.date | None = None
    languages: tuple[str, ...] = Field(min_length=1)
    quiet_hours: QuietHours = QuietHours()
    reminders: Reminders = Reminders()
    fever_threshold_celsius: float = 38.0
    tracked_question: str
    baseline_question: LocalizedText
    #: When the patient will be asked, for the welcome message ("ce soir, puis ..."); without
    #: it the welcome names the knee-cryoneurolysis time points.
    schedule_summary: LocalizedText | None = None
    consent: Consent
    #: How a check-in opens, by the patient's local time when it is sent; none: the bot's own
    #: greeting (an episode enrolled under an older version keeps that one).
    greetings: tuple[Greeting, ...] = ()
    questions: tuple[Question, ...]
    red_flags: dict[str, RedFlag]
    checkins: tuple[CheckInDef, ...]
    messages: dict[str, LocalizedText] = {}
    rules: tuple[Rule, ...]
    safety_advice: SafetyAdvice
    education: Education | None = None
    #: What counts as relief and as its end (outcomes report, relief rule, staff views).
    relief: ReliefDefinition | None = None

    @property
    def approved(self) -> bool:
        """True when a named person approved this version on a date."""
        return bool(self.approved_by) and self.approved_on is not None

    def greeting_at(self, moment: dt.time, language: str) -> str | None:
        """The greeting for a local time: the last one whose ``since`` has passed, else (before
        the first of the day) the last one of the day before; None when the file has none."""
        if not self.greetings:
            return None
        passed = [g for g in self.greetings if g.since_time <= moment]
        return (passed or self.greetings)[-1].text.get(language)

    def question(self, question_id: str) -> Question:
        """The question with this id (KeyError when none)."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)

    def checkin(self, checkin_id: str) -> CheckInDef:
        """The check-in definition with this id (KeyError when none)."""
        for checkin in self.checkins:
            if checkin.id == checkin_id:
                return checkin
        raise KeyError(checkin_id)

    def questions_for(self, checkin_id: str, indication: Indication) -> list[Question]:
        """The questions of a check-in that apply to this indication, in order."""
        selected = []
        for question_id in self.checkin(checkin_id).questions:
            question = self.question(question_id)
            if question.indications is None or indication in question.indications:
                selected.append(question)
        return selected

    def checkins_for(self, indication: Indication) -> list[CheckInDef]:
        """The check-ins that apply to this indication, in file order."""
        return [c for c in self.checkins if c.indications is None or indication in c.indications]

    def rules_for(self, indication: Indication) -> list[Rule]:
        """The rules that apply to this indication."""
        return [r for r in self.rules if r.indications is None or indication in r.indications]

    def flags_of(self, question: Question) -> tuple[str, ...]:
        """The red flags a question can reveal."""
        if question.type == "checklist":
            return question.flags
        if question.type == "choice":
            return tuple(o.flag for o in question.options if o.flag)
        return (question.flag,) if question.flag else ()


def format_location(location: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into ``checkins[3].questions[1]``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


def _walk(node: Any, path: tuple[int | str, ...]) -> Iterator[tuple[tuple[int | str, ...], Any]]:
    yield path, node
    if isinstance(node, LocalizedText | LocalizedPhrases):
        return
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _walk(getattr(node, name), (*path, name))
    elif isinstance(node, tuple | list):
        for index, item in enumerate(node):
            yield from _walk(item, (*path, index))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from _walk(item, (*path, key))


def check_protocol(protocol: Protocol) -> list[tuple[str, str]]:
    """Every problem of meaning in a protocol, as (path, message); empty when valid."""
    problems: list[tuple[str, str]] = []

    def problem(path: tuple[int | str, ...], message: str) -> None:
        problems.append((format_location(path), message))

    languages = set(protocol.languages)
    for path, node in _walk(protocol, ()):
        if isinstance(node, LocalizedText):
            missing = languages - set(node.root)
            if missing:
                problem(path, f"missing translation for {', '.join(sorted(missing))}")
            for language, text in node.root.items():
                if not text.strip():
                    problem((*path, language), "empty text")
        elif isinstance(node, LocalizedPhrases) and node.root:
            missing = languages - set(node.root)
            if missing:
                problem(path, f"missing phrases for {', '.join(sorted(missing))}")

    def check_unique(kind: str, items: list[tuple[tuple[int | str, ...], str]]) -> None:
        seen: set[str] = set()
        for path, item_id in items:
            if not _ID.match(item_id):
                problem(path, f"{kind} id {item_id!r} must be a letter then letters/digits/_")
            if item_id in seen:
                problem(path, f"duplicate {kind} id {item_id!r}")
            seen.add(item_id)

    check_unique(
        "question", [(("questions", i, "id"), q.id) for i, q in enumerate(protocol.questions)]
    )
    check_unique(
        "check-in", [(("checkins", i, "id"), c.id) for i, c in enumerate(protocol.checkins)]
    )
    check_unique("rule", [(("rules", i, "id"), r.id) for i, r in enumerate(protocol.rules)])

    question_ids = {q.id for q in protocol.questions}
    flag_ids = set(protocol.red_flags)
    checkin_ids = {c.id for c in protocol.checkins}

    if protocol.tracked_question not in question_ids:
        problem(("tracked_question",), f"no question {protocol.tracked_question!r}")
    elif protocol.question(protocol.tracked_question).type != "scale":
        problem(("tracked_question",), "the tracked question must be a 0-10 scale")

    for index, question in enumerate(protocol.questions):
        where: tuple[int | str, ...] = ("questions", index)
        if question.type == "choice":
            if len(question.options) < 2:
                problem((*where, "options"), "a choice question needs at least two options")
            check_unique(
                "option",
                [((*where, "options", i, "id"), o.id) for i, o in enumerate(question.options)],
            )
            for i, option in enumerate(question.options):
                if option.flag is not None and option.flag not in flag_ids:
                    problem(
                        (*where, "options", i, "flag"), f"no red flag {option.flag!r} in red_flags"
                    )
        elif question.options:
            problem((*where, "options"), f"a {question.type} question takes no options")
        if question.type == "checklist":
            if not question.flags:
                problem((*where, "flags"), "a checklist needs at least one red flag")
            for i, flag in enumerate(question.flags):
                if flag not in flag_ids:
                    problem((*where, "flags", i), f"no red flag {flag!r} in red_flags")
        elif question.flags:
            problem((*where, "flags"), "only a checklist takes flags (a yes_no takes flag)")
        if question.flag is not None:
            if question.type != "yes_no":
                problem((*where, "flag"), "only a yes_no question takes a flag")
            elif question.flag not in flag_ids:
                problem((*where, "flag"), f"no red flag {question.flag!r} in red_flags")
        if question.type == "scale" and question.min >= question.max:
            problem(where, "a scale needs min < max")

    for index, checkin in enumerate(protocol.checkins):
        where = ("checkins", index)
        for i, question_id in enumerate(checkin.questions):
            if question_id not in question_ids:
                problem((*where, "questions", i), f"no question {question_id!r}")
        if len(set(checkin.questions)) != len(checkin.questions):
            problem((*where, "questions"), "a question is listed twice")
        if checkin.message_before and checkin.message_before not in protocol.messages:
            problem((*where, "message_before"), f"no message {checkin.message_before!r}")
        if protocol.quiet_hours.contains(checkin.local_time):
            problem(
                (*where, "time"),
                f"{checkin.time} is inside quiet hours "
                f"{protocol.quiet_hours.start}-{protocol.quiet_hours.end}",
            )
        if checkin.offset.days < 0 or checkin.offset.months < 0:
            problem((*where, "offset"), "a check-in cannot be before the procedure")

    covered: set[str] = set()
    for index, rule in enumerate(protocol.rules):
        where = ("rules", index)
        question_ref = getattr(rule, "question", None)
        if question_ref is not None:
            if question_ref not in question_ids:
                problem((*where, "question"), f"no question {question_ref!r}")
            elif protocol.question(question_ref).type not in ("scale", "choice"):
                problem((*where, "question"), "this rule needs a scale or choice question")
        if isinstance(rule, RedFlagRule):
            for i, flag in enumerate(rule.flags):
                if flag not in flag_ids:
                    problem((*where, "flags", i), f"no red flag {flag!r} in red_flags")
                covered.add(flag)
        if isinstance(rule, ThresholdRule) and question_ref in question_ids:
            unreachable = _threshold_problem(rule, protocol.question(rule.question))
            if unreachable:
                problem((*where, "value"), unreachable)
        if isinstance(rule, RiseRule | RiseOverBaselineRule) and question_ref in question_ids:
            too_far = _rise_problem(rule, protocol.question(rule.question))
            if too_far:
                problem((*where, "by"), too_far)
        days = (getattr(rule, "from_day", None), getattr(rule, "until_day", None))
        if days[0] is not None and days[1] is not None and days[0] > days[1]:
            problem((*where, "until_day"), f"until_day {days[1]} is before from_day {days[0]}")
        if isinstance(rule, InsufficientReliefRule) and rule.checkin not in checkin_ids:
            problem((*where, "checkin"), f"no check-in {rule.checkin!r}")
    for flag in sorted(flag_ids - covered):
        problem(("red_flags", flag), "no red_flag rule escalates this flag")
    for index, (before, after) in enumerate(pairwise(protocol.greetings), start=1):
        if after.since_time <= before.since_time:
            problem(
                ("greetings", index, "since"),
                f"{after.since} must come after {before.since} (greetings in time-of-day order)",
            )
    _check_outcomes(protocol, problem)
    problems.extend(_education_problems(protocol))
    return problems


#: What an education text may name: the unit's numbers (when to call).
_EDUCATION_PLACEHOLDERS = frozenset({"unit_phone", "oncall_phone"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _education_problems(protocol: Protocol) -> list[tuple[str, str]]:
    """The education section: words in every language, and every answer says when to call."""
    education = protocol.education
    if education is None:
        return []
    problems: list[tuple[str, str]] = []
    for language in protocol.languages:
        if not education.asking.get(language):
            problems.append((f"education.asking.{language}", "no asking words in this language"))
    for topic_id, topic in education.topics.items():
        where = f"education.topics.{topic_id}"
        if not _ID.match(topic_id):
            problems.append(
                (where, f"topic id {topic_id!r} must be a letter then letters/digits/_")
            )
        for language in protocol.languages:
            if not topic.keywords.get(language):
                problems.append((f"{where}.keywords.{language}", "no keywords in this language"))
        for language, text in topic.text.root.items():
            names = set(_PLACEHOLDER.findall(text))
            if names - _EDUCATION_PLACEHOLDERS:
                unknown = ", ".join(sorted(names - _EDUCATION_PLACEHOLDERS))
                problems.append((f"{where}.text.{language}", f"unknown placeholder {unknown}"))
            if "unit_phone" not in names:
                problems.append(
                    (f"{where}.text.{language}", "must say when to call, with {unit_phone}")
                )
    return problems


def _answer_values(question: Question) -> tuple[list[int], str] | None:
    """Every value an answer can take, and how to say so; None for a question without values."""
    if question.type == "scale":
        return (
            list(range(question.min, question.max + 1)),
            f"{question.id} is a scale from {question.min} to {question.max}",
        )
    if question.type == "choice":
        answers = sorted({option.value for option in question.options})
        return answers, f"the options of {question.id} are worth {', '.join(map(str, answers))}"
    return None


def _rise_problem(rule: RiseRule | RiseOverBaselineRule, question: Question) -> str | None:
    """Why a rise of ``by`` can never happen on its question's values (None when it can)."""
    values = _answer_values(question)
    if values is None or not values[0]:
        return None
    answers, scale = values
    widest = answers[-1] - answers[0]
    if rule.by <= widest:
        return None
    return (
        f"rule {rule.id!r}: a rise of {rule.by} on {question.id} can never happen ({scale}): "
        f"choose a value from 1 to {widest}"
    )


def _check_outcomes(
    protocol: Protocol, problem: Callable[[tuple[int | str, ...], str], None]
) -> None:
    """Painkiller questions and outcome rules (issue 16) make sense together."""
    from bot.domain.painkillers import CLASS_IDS  # the classes are data of that module

    painkillers = [q for q in protocol.questions if q.type == "painkillers"]
    for index, question in enumerate(protocol.questions):
        if question.baseline and question.type != "painkillers":
            problem(("questions", index, "baseline"), "only a painkillers question is a baseline")
    for index, rule in enumerate(protocol.rules):
        where: tuple[int | str, ...] = ("rules", index)
        if isinstance(rule, NewOpioidRule):
            if not any(q.baseline for q in painkillers):
                problem(where, "a new_opioid rule needs a painkillers question with baseline: true")
            if not any(not q.baseline for q in painkillers):
                problem(where, "a new_opioid rule needs a follow-up painkillers question")
            for i, name in enumerate(rule.classes):
                if name not in CLASS_IDS:
                    problem((*where, "classes", i), f"no painkiller class {name!r}")
        if isinstance(rule, ReliefEndedRule) and protocol.relief is None:
            problem(where, "a relief_ended rule needs the relief: section")


def _threshold_problem(rule: ThresholdRule, question: Question) -> str | None:
    """Why a threshold can never fire, or fires on every answer, given its question's scale."""
    values = _answer_values(question)
    if values is None:
        return None
    answers, scale = values
    firing = [answer for answer in answers if rule.fires_on(answer)]
    if not answers or 0 < len(firing) < len(answers):
        return None
    useful = [
        value
        for value in answers
        if 0
        < sum(rule.model_copy(update={"value": value}).fires_on(a) for a in answers)
        < len(answers)
    ]
    verdict = "can never fire" if not firing else "fires on every answer"
    fix = f"choose {_choices(useful)}" if useful else "choose another operator"
    return f"rule {rule.id!r}: {question.id} {rule.op} {rule.value} {verdict} ({scale}): {fix}"


def _choices(values: list[int]) -> str:
    """'a value from 1 to 7' for a run of whole numbers, else 'one of 0, 2, 5'."""
    if len(values) == 1:
        return f"the value {values[0]}"
    if values == list(range(values[0], values[-1] + 1)):
        return f"a value from {values[0]} to {values[-1]}"
    return f"one of {', '.join(map(str, values))}"
