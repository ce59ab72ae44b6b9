"""Is this update urgent? A cheap, pure reading of a message as it arrives, before any query.

The intake runs an urgent update ahead of the crowd (its own lane, first to the database), so
a red flag or a pain of 9 never waits behind thousands of ordinary answers. The reading is a
*priority hint*, never the decision: the conversation still saves and evaluates every answer
with the protocol's rules. Wrongly urgent costs a little priority; wrongly ordinary costs only
the wait the update had anyway.

Urgent means what the protocols call ``urgent`` or ``emergency`` (never a number written here):

- a red-flag button: the yes of a clarification (``f:<flag>:y``) or of a yes/no question, a
  choice option carrying the flag, a checklist's "Done" (it is refused without a ticked sign)
  when that checklist holds an urgent sign;
- a text in which the red-flag parser reads an urgent flag for certain;
- a number (typed, or a scale button) that meets an urgent threshold rule of the open question.

The open question is the one this process last asked the chat (a hint the Telegram adapter
keeps); when it is unknown (another process asked, or a restart), a number is read against
every scale question with an urgent threshold, and a yes/no or choice button is not urgent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.domain.parsing import parse_scale, scan_red_flags
from bot.domain.protocol import (
    Protocol,
    Question,
    RedFlagRule,
    Severity,
    ThresholdRule,
)

URGENT_SEVERITIES = frozenset({Severity.URGENT, Severity.EMERGENCY})


@dataclass(frozen=True)
class _Scanner:
    """One protocol's red-flag phrases (each protocol reads text with its own)."""

    protocol: Protocol
    urgent_flags: frozenset[str]

    def urgent_in(self, text: str) -> bool:
        mentions = scan_red_flags(
            text,
            self.protocol.red_flags,
            fever_threshold=self.protocol.fever_threshold_celsius,
        )
        return any(m.certainty == "certain" and m.flag in self.urgent_flags for m in mentions)


@dataclass(frozen=True)
class UrgencyRules:
    """The urgent flags and thresholds of the enabled protocols, read once at start."""

    scanners: tuple[_Scanner, ...] = ()
    urgent_flags: frozenset[str] = frozenset()
    #: Question id → its urgent threshold rules (of every protocol that has the question).
    thresholds: dict[str, tuple[ThresholdRule, ...]] = field(default_factory=dict)
    #: Question id → the question (the first protocol's, when several define it).
    questions: dict[str, Question] = field(default_factory=dict)

    @classmethod
    def of(cls, protocols: Iterable[Protocol]) -> UrgencyRules:
        """The rules of ``protocols`` (every version still followed by a patient)."""
        scanners: list[_Scanner] = []
        flags: set[str] = set()
        thresholds: dict[str, list[ThresholdRule]] = {}
        questions: dict[str, Question] = {}
        for protocol in protocols:
            urgent = frozenset(
                flag
                for rule in protocol.rules
                if isinstance(rule, RedFlagRule) and rule.severity in URGENT_SEVERITIES
                for flag in rule.flags
            )
            flags |= urgent
            scanners.append(_Scanner(protocol, urgent))
            for rule in protocol.rules:
                if isinstance(rule, ThresholdRule) and rule.severity in URGENT_SEVERITIES:
                    thresholds.setdefault(rule.question, []).append(rule)
            for question in protocol.questions:
                questions.setdefault(question.id, question)
        return cls(
            scanners=tuple(scanners),
            urgent_flags=frozenset(flags),
            thresholds={q: tuple(rules) for q, rules in thresholds.items()},
            questions=questions,
        )

    def text_is_urgent(self, text: str, *, open_question: str | None = None) -> bool:
        """A typed message: an urgent red flag read for certain, or an urgent score."""
        if any(scanner.urgent_in(text) for scanner in self.scanners):
            return True
        return any(
            self._number_is_urgent(question, text) for question in self._scales(open_question)
        )

    def press_is_urgent(self, data: str, *, open_question: str | None = None) -> bool:
        """A button press (its callback data, see :mod:`bot.services.questions`)."""
        parts = data.split(":")
        kind = parts[0]
        if kind == "f" and len(parts) == 3:
            return parts[2] == "y" and parts[1] in self.urgent_flags
        question = self.questions.get(open_question) if open_question else None
        if kind == "d" and len(parts) == 3:
            if question is not None:
                return question.type == "checklist" and self._holds_urgent(question.flags)
            return True  # "Done" is refused without a ticked sign: take it as urgent
        if kind != "a" or len(parts) != 4 or not parts[3].lstrip("-").isdigit():
            return False
        value = int(parts[3])
        if question is None:
            return any(self._fires(q.id, value) for q in self._scales(None))
        if question.type == "scale":
            return self._fires(question.id, value)
        if question.type == "yes_no":
            return value == 1 and question.flag in self.urgent_flags
        if question.type == "choice" and 0 <= value < len(question.options):
            return question.options[value].flag in self.urgent_flags
        return False

    def _scales(self, open_question: str | None) -> list[Question]:
        """The scale questions a number may answer: the open one, or any with a threshold."""
        if open_question is not None and open_question in self.questions:
            question = self.questions[open_question]
            return [question] if question.type == "scale" else []
        return [
            self.questions[q]
            for q in self.thresholds
            if q in self.questions and self.questions[q].type == "scale"
        ]

    def _number_is_urgent(self, question: Question, text: str) -> bool:
        if question.id not in self.thresholds:
            return False
        parsed = parse_scale(text, minimum=question.min, maximum=question.max)
        return (
            parsed.status == "ok"
            and parsed.value is not None
            and self._fires(question.id, parsed.value)
        )

    def _fires(self, question_id: str, value: int) -> bool:
        return any(rule.fires_on(value) for rule in self.thresholds.get(question_id, ()))

    def _holds_urgent(self, flags: Iterable[str]) -> bool:
        return any(flag in self.urgent_flags for flag in flags)
