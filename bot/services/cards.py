"""The staff card of an alert, in the staff language (STAFF_LANGUAGE): who, how bad and why in
the first two lines, then what the patient answered, each said once.

Staff read a card on a phone between two patients: every line is in words they use (the
question's label, the red flag's name), never a rule or question id, and no line repeats
another (a red-flag rule's title already names its flag: the bullet says where it came from).
Delivery is :mod:`bot.services.alerts`' business; this module only renders.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.db.models import Alert, Episode, Patient
from bot.domain.protocol import (
    MissedInRowRule,
    Protocol,
    Question,
    RedFlagRule,
    Rule,
    Severity,
    UnclearAnswerRule,
)
from bot.domain.schedule import day_number
from bot.domain.states import AlertStatus
from bot.i18n import format_local, t, tn
from bot.services.outcome_cards import describe_outcome_evidence
from bot.services.ports import Button, OutgoingMessage

SEVERITY_MARK = {"emergency": "🔴", "urgent": "🔴", "review": "🟠"}
#: The latest pieces of evidence a card lists (an alert extended for days stays short).
EVIDENCE_SHOWN = 6


def rules_of(alert: Alert) -> list[str]:
    """The rules an alert stands for: its own first, then those joined into it."""
    rules = [alert.rule_id]
    for item in alert.evidence or ():
        rule_id = item.get("rule_id") if isinstance(item, dict) else None
        if isinstance(rule_id, str) and rule_id not in rules:
            rules.append(rule_id)
    return rules


def explanations(protocol: Protocol, alert: Alert, language: str) -> list[str]:
    """What each rule of an alert says, its own first (a merged alert names every rule)."""
    said = []
    for rule_id in rules_of(alert):
        named = next((r for r in protocol.rules if r.id == rule_id), None)
        text = named.explanation.get(language) if named else t(language, "Alert")
        if text not in said:
            said.append(text)
    return said


def alert_explanation(protocol: Protocol, alert: Alert, language: str) -> str:
    """The alert's reasons on one line (lists and the digest), never a rule id."""
    return " + ".join(explanations(protocol, alert, language))


def day_label(language: str, day: int) -> str:
    """'J+3' in French, 'D+3' in English: the day since the procedure, as staff write it."""
    return t(language, "D+{day}", day=day)


def knee_label(language: str, side: str) -> str:
    """'genou gauche' in French, 'left knee' in English."""
    return t(language, "{side} knee", side=t(language, side))


def quoted(language: str, text: str) -> str:
    """A patient's words between the language's quotation marks (« » in French)."""
    return t(language, "“{text}”", text=text)


def labelled(language: str, name: str, value: str) -> str:
    """'Swelling: A lot' ('Gonflement : Beaucoup': French puts a space before the colon)."""
    return t(language, "{name}: {value}", name=name, value=value)


def staff_card(
    protocol: Protocol,
    alert: Alert,
    episode: Episode,
    patient: Patient,
    *,
    now: datetime,
    language: str,
    escalated: bool = False,
) -> OutgoingMessage:
    """The alert as staff see it, with its buttons while it is not resolved."""
    lang = language
    severity = Severity(alert.severity)
    rule = next((r for r in protocol.rules if r.id == alert.rule_id), None)
    reasons = explanations(protocol, alert, lang)
    day = day_number(episode.procedure_at, now, episode.time_zone)
    header = (
        f"{SEVERITY_MARK[severity.value]} {t(lang, severity.value).upper()} — {patient.label} · "
        f"{day_label(lang, day)} · {knee_label(lang, episode.side)} "
        f"({t(lang, episode.indication)})"
    )
    lines = [header, *reasons]
    for item in alert.evidence[-EVIDENCE_SHOWN:]:
        item_rule = next((r for r in protocol.rules if r.id == item.get("rule_id")), rule)
        text = describe_evidence(protocol, item_rule, item, lang)
        if text and "• " + text not in lines and text not in reasons:
            lines.append("• " + text)
    if episode.baseline_pain is not None:
        lines.append(t(lang, "Baseline pain: {value}/10", value=episode.baseline_pain))
    if severity in (Severity.EMERGENCY, Severity.URGENT):
        lines.append(
            t(
                lang,
                "Safety advice sent to the patient at {time}",
                time=format_local(alert.created_at, lang, episode.time_zone, "time"),
            )
        )
    if escalated:
        minutes = int((now - alert.created_at).total_seconds() // 60)
        lines.insert(0, t(lang, "⏰ not acknowledged for {minutes} min", minutes=minutes))
    lines.extend(_handling(alert, lang, episode.time_zone))
    return OutgoingMessage(text="\n".join(lines), buttons=_buttons(alert, lang))


def describe_evidence(
    protocol: Protocol, rule: Rule | None, item: dict[str, Any], language: str
) -> str:
    """One line of what triggered an alert: the answer, what it was compared with, the day."""
    flag = item.get("flag")
    question_id = item.get("question_id")
    value = item.get("value")
    day = item.get("day")
    if isinstance(rule, MissedInRowRule) and value is not None:
        # The title says the rule's count; the bullet adds a longer silence and the last answer.
        silence: list[str] = []
        if int(value) != rule.count:
            silence.append(
                tn(
                    language,
                    "{count} check-in in a row unanswered",
                    "{count} check-ins in a row unanswered",
                    int(value),
                )
            )
        last = t(language, "last answer {day}", day=day_label(language, int(day or 0)))
        return " · ".join([*silence, last])
    question = _question(protocol, question_id)
    outcome = describe_outcome_evidence(
        rule,
        item,
        language,
        when=day_label(language, int(day)) if day is not None else "",
        answer=_answer(question, value, language) if question and value is not None else None,
    )
    if outcome is not None:
        return outcome
    parts: list[str] = []
    if isinstance(rule, UnclearAnswerRule):
        parts.append(
            t(language, "unclear answer: {question}", question=_asked(protocol, item, language))
        )
    elif flag and flag in protocol.red_flags:
        # A rule on one flag is titled after it: name the flag only when the rule has several.
        if not (isinstance(rule, RedFlagRule) and len(rule.flags) == 1):
            parts.append(protocol.red_flags[flag].label.get(language))
        parts.append(_where_reported(question, question_id, value, language))
    elif question is not None and value is not None:
        parts.append(_answer(question, value, language))
    elif question_id and value is not None:
        parts.append(t(language, "answer {value}", value=value))
    reference = item.get("reference")
    if reference is not None:
        source = item.get("reference_source") or "baseline"
        parts.append(
            t(language, "reference {value} ({source})", value=reference, source=t(language, source))
        )
    if parts and day is not None:
        parts.append(day_label(language, int(day)))
    return " · ".join(part for part in parts if part)


def _question(protocol: Protocol, question_id: str | None) -> Question | None:
    return next((q for q in protocol.questions if q.id == question_id), None)


def _answer(question: Question, value: int, language: str) -> str:
    """'Average pain (24 h) 9/10', 'Swelling: A lot'."""
    if question.type == "scale":
        return f"{question.name(language)} {value}/{question.max}"
    if question.type == "choice":
        option = next((o for o in question.options if o.value == value), None)
        shown = option.label.get(language) if option else str(value)
        return labelled(language, question.name(language), shown)
    return labelled(language, question.name(language), str(value))


def _where_reported(
    question: Question | None,
    question_id: str | None,
    value: Any,
    language: str,
) -> str:
    """How the patient reported a red flag: ticked, answered yes, chose it, or wrote it."""
    if question_id is None:
        return t(language, "written in a message")
    if question is None:  # the yes/no the bot asks after a doubtful message names the flag
        return t(language, "confirmed after a message")
    if question.type == "checklist":
        return t(language, "ticked in the check-in")
    if question.type == "choice" and value is not None:
        return _answer(question, int(value), language)
    return t(language, "answered yes in the check-in")


def _asked(protocol: Protocol, item: dict[str, Any], language: str) -> str:
    """The question an unclear answer was about, by its label."""
    question_id = item.get("question_id")
    question = _question(protocol, question_id)
    if question is not None:
        return question.name(language)
    if question_id in protocol.red_flags:
        return protocol.red_flags[question_id].label.get(language)
    return t(language, "a warning-sign question")


def _handling(alert: Alert, language: str, time_zone: str) -> list[str]:
    """Who took the alert and who closed it, with the note."""
    lines = []
    if alert.acknowledged_by:
        assert alert.acknowledged_at is not None
        lines.append(
            t(
                language,
                "✅ Acknowledged by {who} at {time}",
                who=alert.acknowledged_by,
                time=format_local(alert.acknowledged_at, language, time_zone, "time"),
            )
        )
    if alert.resolved_by:
        assert alert.resolved_at is not None
        lines.append(
            t(
                language,
                "✅ Resolved by {who} at {time}",
                who=alert.resolved_by,
                time=format_local(alert.resolved_at, language, time_zone, "time"),
            )
        )
        if alert.resolution_note:
            lines.append(t(language, "Note: {note}", note=alert.resolution_note))
    return lines


def _buttons(alert: Alert, language: str) -> tuple[tuple[Button, ...], ...]:
    if alert.status == AlertStatus.OPEN:
        return (
            (
                Button(t(language, "Acknowledge"), f"k:{alert.id}"),
                Button(t(language, "Resolve…"), f"r:{alert.id}"),
            ),
        )
    if alert.status == AlertStatus.ACKNOWLEDGED:
        return ((Button(t(language, "Resolve…"), f"r:{alert.id}"),),)
    return ()
