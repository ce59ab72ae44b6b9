"""Scripted patient courses (vignettes.yaml) through parsing and the escalation rules.

Each vignette is written from docs/clinical.md, not from the rules code: a patient of a given
indication answers the protocol's check-ins with buttons or in their own words (French or
English), and the vignette lists exactly which alerts staff must get. The runner plays the
course the way the bot does: after every answer it evaluates the rules on that answer only.

Free text goes through bot.domain.parsing: ``parse_question`` reads the answer, and
``scan_red_flags`` reads every free text for warning signs. A "certain" mention is a reported
flag; a "doubtful" one makes the bot ask the flag's yes/no question, whose scripted answer is
the vignette's ``confirm: {R2: yes}`` (a doubtful mention with no scripted answer is an error
in the vignette, so nothing is silently assumed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain import parsing
from bot.domain.protocol import Indication, Question, RedFlagRule, Severity
from bot.domain.rules import (
    Finding,
    History,
    Observation,
    evaluate_answers,
    evaluate_blocked,
    evaluate_missed,
    evaluate_unheard_media,
)
from bot.protocols import default_schedules_dir, load_protocol_file

PROTOCOL = load_protocol_file(default_schedules_dir() / "knee-cryoneurolysis.yaml")
VIGNETTES: list[dict[str, Any]] = yaml.safe_load(
    Path(__file__).with_name("vignettes.yaml").read_text(encoding="utf-8")
)
KINDS = {"normal", "boundary", "review", "urgent", "emergency"}
ALERTING = {"urgent", "emergency"}
PASSING = [v for v in VIGNETTES if "parsing_gap" not in v]
GAPS = [v for v in VIGNETTES if "parsing_gap" in v]
RULE_FLAGS = {r.id: set(r.flags) for r in PROTOCOL.rules if isinstance(r, RedFlagRule)}


class VignetteError(AssertionError):
    """The vignette itself is malformed (unknown question, unscripted follow-up question...)."""


def day_of(checkin_id: str) -> int:
    """Days since the procedure (a month counted as 30 days: no rule looks that closely)."""
    offset = PROTOCOL.checkin(checkin_id).offset
    return offset.days + 30 * offset.months


def yes_no(value: Any, where: str) -> bool | None:
    """YAML reads yes/no as booleans; accept the words too. None = "unclear"."""
    if isinstance(value, bool):
        return value
    if value in ("yes", "no"):
        return bool(value == "yes")
    if value == "unclear":
        return None
    raise VignetteError(f"{where}: expected yes, no or unclear, got {value!r}")


def uses_text(vignette: dict[str, Any]) -> bool:
    for step in vignette["course"]:
        if "note" in step:
            return True
        if any("text" in a for a in step.get("answers", {}).values()):
            return True
    return False


def button_flags(vignette: dict[str, Any]) -> set[str]:
    """Flags reported by a button press anywhere in the vignette."""
    flags: set[str] = set()
    for step in vignette["course"]:
        for question_id, answer in step.get("answers", {}).items():
            if "button" in answer:
                obs = from_button(PROTOCOL.question(question_id), answer["button"], "", 0, "?")
                flags |= obs.flags
    return flags


def from_button(
    question: Question, button: Any, checkin_id: str, day: int, where: str
) -> Observation:
    """A tap on the question's keyboard, as the bot saves it."""
    if question.type == "scale":
        if not isinstance(button, int) or isinstance(button, bool):
            raise VignetteError(f"{where}: a scale takes a number")
        if not question.min <= button <= question.max:
            raise VignetteError(f"{where}: {button} outside {question.min}-{question.max}")
        return Observation(checkin_id, question.id, day, button)
    if question.type == "choice":
        for option in question.options:
            if option.id == button:
                flags = frozenset({option.flag} if option.flag else ())
                return Observation(checkin_id, question.id, day, option.value, flags)
        raise VignetteError(f"{where}: no option {button!r}")
    if question.type == "yes_no":
        answer = yes_no(button, where)
        if answer is None:
            return Observation(checkin_id, question.id, day, None, unclear=True)
        flags = frozenset({question.flag} if answer and question.flag else ())
        return Observation(checkin_id, question.id, day, int(answer), flags)
    if question.type == "checklist":
        if not isinstance(button, list) or not set(button) <= set(question.flags):
            raise VignetteError(f"{where}: tick a list of {question.flags}")
        return Observation(checkin_id, question.id, day, None, frozenset(button))
    raise VignetteError(f"{where}: a {question.type} question has no buttons")


def confirmations(
    text: str,
    found: set[str],
    confirm: dict[str, Any],
    checkin_id: str | None,
    day: int,
    where: str,
) -> tuple[set[str], list[Observation]]:
    """Flags read for certain in ``text``, and the answers to the questions doubt makes us ask."""
    certain: set[str] = set()
    asked: list[Observation] = []
    mentions = parsing.scan_red_flags(
        text, PROTOCOL.red_flags, fever_threshold=PROTOCOL.fever_threshold_celsius
    )
    for mention in mentions:
        if mention.certainty == "certain":
            certain.add(mention.flag)
    for mention in mentions:
        flag = mention.flag
        if mention.certainty == "certain" or flag in certain or flag in found:
            continue
        if any(o.question_id == flag for o in asked):
            continue
        if flag not in confirm:
            raise VignetteError(
                f"{where}: {text!r} mentions {flag} doubtfully; script the patient's answer to "
                f"the follow-up question with confirm: {{{flag}: yes|no}}"
            )
        answer = yes_no(confirm[flag], f"{where} confirm {flag}")
        if answer is None:
            asked.append(Observation(checkin_id, flag, day, None, unclear=True))
        else:
            flags = frozenset({flag} if answer else ())
            asked.append(Observation(checkin_id, flag, day, int(answer), flags))
    return certain, asked


def read(question: Question, text: str, language: str) -> parsing.Parsed:
    """parse_question as the bot calls it: with the protocol's flags (checklists read them)."""
    return parsing.parse_question(
        question,
        text,
        language=language,
        red_flags=PROTOCOL.red_flags,
        fever_threshold=PROTOCOL.fever_threshold_celsius,
    )


def from_text(
    question: Question,
    answer: dict[str, Any],
    checkin_id: str,
    day: int,
    language: str,
    where: str,
) -> list[Observation]:
    """A typed answer: read it (with the one re-ask), then scan it for red flags."""
    texts = [answer["text"]]
    parsed = read(question, answer["text"], language)
    if parsed.status == "unclear" and "retry" in answer:
        texts.append(answer["retry"])
        parsed = read(question, answer["retry"], language)
    flags = set(parsed.flags)
    if question.type == "yes_no" and question.flag and parsed.value == 1:
        flags.add(question.flag)
    if question.type == "choice" and parsed.option_id is not None:
        option = next(o for o in question.options if o.id == parsed.option_id)
        if option.flag:
            flags.add(option.flag)
    asked: list[Observation] = []
    for text in texts:
        certain, more = confirmations(
            text, flags, answer.get("confirm", {}), checkin_id, day, where
        )
        flags |= certain
        asked += more
    unclear = parsed.status == "unclear" and bool(PROTOCOL.flags_of(question))
    value = parsed.value if parsed.status == "ok" else None
    main = Observation(checkin_id, question.id, day, value, frozenset(flags), unclear)
    return [main, *asked]


def from_note(step: dict[str, Any], where: str) -> list[Observation]:
    """A message typed outside any check-in: saved as a note and scanned for red flags."""
    day = step["day"]
    certain, asked = confirmations(step["note"], set(), step.get("confirm", {}), None, day, where)
    return [Observation(None, None, day, None, frozenset(certain)), *asked]


def play(vignette: dict[str, Any]) -> set[tuple[str, str]]:
    """Play a vignette through parsing and rules; the alerts raised over the whole course."""
    indication = Indication(vignette["indication"])
    language = vignette["language"]
    baseline = vignette.get("baseline")
    observations: list[Observation] = []
    missed = 0
    alerts: set[tuple[str, str]] = set()

    def history(*, blocked: bool = False) -> History:
        return History(indication, baseline, tuple(observations), missed, blocked)

    def record(findings: list[Finding]) -> None:
        alerts.update((f.rule_id, f.severity.value) for f in findings)

    for number, step in enumerate(vignette["course"]):
        where = f"{vignette['id']} step {number}"
        if "checkin" in step:
            checkin_id = step["checkin"]
            day = day_of(checkin_id)
            if step.get("missed"):
                missed += 1
                record(evaluate_missed(PROTOCOL, history()))
                continue
            missed = 0
            asked = {q.id: q for q in PROTOCOL.questions_for(checkin_id, indication)}
            order = list(asked)
            answers = step["answers"]
            for question_id in answers:
                if question_id not in asked:
                    raise VignetteError(f"{where}: {question_id} is not asked at {checkin_id}")
            for question_id in sorted(answers, key=order.index):
                answer = answers[question_id]
                question = asked[question_id]
                here = f"{where} {question_id}"
                if "button" in answer:
                    new = [from_button(question, answer["button"], checkin_id, day, here)]
                elif "text" in answer:
                    new = from_text(question, answer, checkin_id, day, language, here)
                else:
                    raise VignetteError(f"{here}: an answer is {{button: ...}} or {{text: ...}}")
                observations.extend(new)
                record(evaluate_answers(PROTOCOL, history(), new))
        elif "note" in step:
            new = from_note(step, where)
            observations.extend(new)
            record(evaluate_answers(PROTOCOL, history(), new))
        elif "voice" in step:
            record(evaluate_unheard_media(PROTOCOL, history(), day=step["voice"]))
        elif "blocked" in step:
            record(evaluate_blocked(PROTOCOL, history(blocked=True)))
        else:
            raise VignetteError(f"{where}: a step is a checkin, a note, a voice or blocked")
    return alerts


def expected(vignette: dict[str, Any]) -> set[tuple[str, str]]:
    return {(rule_id, severity) for rule_id, severity in vignette["expect"]}


def _params() -> Iterator[Any]:
    """One test per vignette; a known parsing gap is a strict xfail, so fixing the gap (adding
    the phrase to the protocol or the parser) turns it into a failure until the mark is removed."""
    for vignette in VIGNETTES:
        marks = []
        if "parsing_gap" in vignette:
            marks.append(pytest.mark.xfail(strict=True, reason=vignette["parsing_gap"]))
        yield pytest.param(vignette, id=vignette["id"], marks=marks)


@pytest.mark.parametrize("vignette", list(_params()))
def test_vignette(vignette: dict[str, Any]) -> None:
    assert play(vignette) == expected(vignette)


def test_vignette_file_is_well_formed() -> None:
    """Ids unique, kinds known, and a vignette's kind agrees with its expected alerts."""
    seen: set[str] = set()
    rank = {s.value: s.rank for s in Severity}
    for vignette in VIGNETTES:
        name = vignette["id"]
        assert name not in seen, name
        seen.add(name)
        assert vignette["language"] in PROTOCOL.languages, name
        assert vignette["kind"] in KINDS, name
        Indication(vignette["indication"])
        rules = {r.id: r.severity.value for r in PROTOCOL.rules}
        for rule_id, severity in vignette["expect"]:
            assert rules.get(rule_id) == severity, f"{name}: {rule_id} is not {severity}"
        worst = min((rank[s] for _, s in vignette["expect"]), default=None)
        kind = vignette["kind"]
        if kind == "normal":
            assert worst is None, name
        elif kind == "boundary":
            assert worst is None or worst == rank["review"], name
        else:
            assert worst == rank[kind], name


def test_the_set_of_vignettes_is_wide_enough() -> None:
    """At least 40 courses, both languages, 10+ normal recoveries, every urgent or emergency
    flag reported in each language both by button and in the patient's own words."""
    assert len(PASSING) >= 40
    by_language = {lang: [v for v in PASSING if v["language"] == lang] for lang in ("fr", "en")}
    assert abs(len(by_language["fr"]) - len(by_language["en"])) <= len(PASSING) // 5
    assert sum(v["kind"] == "normal" for v in PASSING) >= 10
    alerting_flags = {
        flag
        for rule in PROTOCOL.rules
        if isinstance(rule, RedFlagRule) and rule.severity in (Severity.URGENT, Severity.EMERGENCY)
        for flag in rule.flags
    }
    for language, vignettes in by_language.items():
        by_button: set[str] = set()
        by_text: set[str] = set()
        for vignette in vignettes:
            expected_flags = set().union(*(RULE_FLAGS.get(r, set()) for r, _ in vignette["expect"]))
            pressed = button_flags(vignette)
            by_button |= expected_flags & pressed
            if uses_text(vignette):
                by_text |= expected_flags - pressed
        assert alerting_flags - by_button == set(), f"{language} by button"
        assert alerting_flags - by_text == set(), f"{language} in free text"


def test_summary_every_urgent_course_alerts_and_no_normal_course_does() -> None:
    """The product's promise in two numbers: 100 % of urgent/emergency courses raise an alert
    at least as severe, 0 normal courses raise anything."""
    rank = {s.value: s.rank for s in Severity}
    missed_alarms: list[str] = []
    false_alarms: list[str] = []
    alerting = [v for v in PASSING if v["kind"] in ALERTING]
    normal = [v for v in PASSING if v["kind"] == "normal"]
    for vignette in alerting:
        alerts = play(vignette)
        if not any(rank[severity] <= rank[vignette["kind"]] for _, severity in alerts):
            missed_alarms.append(vignette["id"])
    for vignette in normal:
        if play(vignette):
            false_alarms.append(vignette["id"])
    caught = len(alerting) - len(missed_alarms)
    quiet = len(normal) - len(false_alarms)
    assert (missed_alarms, false_alarms) == ([], []), (
        f"urgent/emergency courses alerting: {caught}/{len(alerting)}; "
        f"normal courses quiet: {quiet}/{len(normal)}; "
        f"known parsing gaps (xfail, not counted): {[v['id'] for v in GAPS]}"
    )
