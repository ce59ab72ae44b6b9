"""Saving what the patient said, reading it against the protocol's rules, escalating findings.

Alerts are written in the answer's transaction; the patient gets the safety advice at once."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer, CheckIn, Episode
from bot.db.queries import answers
from bot.domain.parsing import Parsed
from bot.domain.protocol import Indication, Severity
from bot.domain.rules import Finding, History, Observation, evaluate_answers, most_severe
from bot.metrics import ANSWERS_SAVED
from bot.services import alerts, chat_health
from bot.services.conversation.turn import Turn
from bot.services.ports import OutgoingMessage

log = structlog.get_logger(__name__)


def save_answer(
    turn: Turn,
    *,
    kind: str,
    parsed: Parsed,
    text: str | None = None,
    question_id: str | None = None,
    checkin: CheckIn | None = None,
    message_id: int | None = None,
    flags: frozenset[str] | None = None,
    file_id: str | None = None,
) -> Answer:
    """Keep what the patient said, with its raw text, as one answer row of this turn."""
    answer = Answer(
        episode_id=turn.episode.id,
        checkin_id=checkin.id if checkin else None,
        question_id=question_id,
        kind=kind,
        raw_text=text,
        value=parsed.value,
        option_id=parsed.option_id,
        flags=sorted(flags if flags is not None else parsed.flags),
        choices=sorted(parsed.items) if parsed.items else None,
        status=parsed.status,
        day=turn.day,
        file_id=file_id,
        telegram_message_id=message_id,
        created_at=turn.now,
    )
    turn.session.add(answer)
    ANSWERS_SAVED.labels(kind=kind).inc()
    return answer


def _observation_question(answer: Answer) -> str | None:
    """The question id as the rules know it (a clarification is its red flag's yes/no question)."""
    if answer.kind == "note" or answer.question_id is None:
        return None
    if answer.question_id.startswith("clarify_"):
        return answer.question_id.removeprefix("clarify_")
    return answer.question_id


async def load_history(session: AsyncSession, episode: Episode) -> History:
    """Everything the episode's patient said so far, as the rules read it."""
    observations = []
    for answer, def_id in await answers.answers_with_checkin(session, episode_id=episode.id):
        if answer.status == "skip" or answer.question_id == "baseline":
            continue
        observations.append(
            Observation(
                checkin_id=def_id,
                question_id=_observation_question(answer),
                day=answer.day,
                value=answer.value,
                flags=frozenset(answer.flags or ()),
                unclear=answer.status == "unclear",
                items=frozenset(answer.choices or ()),
            )
        )
    return History(
        indication=Indication(episode.indication),
        baseline=episode.baseline_pain,
        observations=tuple(observations),
    )


async def escalate(turn: Turn, findings: list[Finding]) -> None:
    """Open alerts and give the patient safety advice at once (never waiting for staff).

    Findings of one update are merged: a typed answer read by its question's rules and by the
    free-text scan ("je dirais 9 sur 10, c'est insupportable") gets one piece of advice (the
    most pressing) and one staff card, not one of each per reading.
    """
    if not findings:
        return
    await raise_alerts(turn, findings)
    severity = most_severe(findings)
    if severity is not None:
        await _advise(turn, severity)
    log.info("findings", episode_id=turn.episode.id, count=len(findings))


async def raise_alerts(turn: Turn, findings: list[Finding]) -> None:
    """Open or extend the alerts of ``findings``; the first alert this update opens is the one
    its later findings join (one staff card per update)."""
    outbox = turn.outbox
    touched = await alerts.raise_findings(
        turn.session,
        now=turn.now,
        episode=turn.episode,
        findings=findings,
        joining=outbox.opened_alert,
    )
    for alert in touched:
        alerts.schedule_escalation(alert, now=turn.now, after=turn.ctx.unit.reescalate_after)
        # Not flushed yet, so without an id: opened by this very call.
        if alert.id is None and outbox.opened_alert is None:
            outbox.opened_alert = alert
        if alert not in outbox.alerts:
            outbox.alerts.append(alert)


async def _advise(turn: Turn, severity: Severity) -> None:
    """The safety advice of ``severity``, once per update: a later, more pressing finding
    replaces the advice already queued, where it stands; a milder one adds nothing.

    "The team has been alerted" is said only when a team chat can take the alert.
    """
    outbox = turn.outbox
    if outbox.advice is not None and severity.rank >= outbox.advice[1].rank:
        return
    ctx = turn.ctx
    reachable = await chat_health.team_reachable(turn.session, ctx)
    text = chat_health.honest_advice(
        alerts.safety_advice(turn.protocol, severity, language=turn.language, ctx=ctx),
        language=turn.language,
        team_reachable=reachable,
        unit_phone=ctx.unit.unit_phone,
    )
    if outbox.advice is None:
        outbox.say(text)
        outbox.advice = (len(outbox.messages) - 1, severity)
    elif severity.rank < outbox.advice[1].rank:
        index = outbox.advice[0]
        outbox.messages[index] = OutgoingMessage(text=text)
        outbox.advice = (index, severity)
    turn.audit("safety_advice_sent", severity=severity.value, team_reachable=reachable)


async def evaluate(turn: Turn, new: list[Observation]) -> list[Finding]:
    """Read the new observations against the rules (with the whole history) and escalate."""
    history = await load_history(turn.session, turn.episode)
    findings = evaluate_answers(turn.protocol, history, new)
    await escalate(turn, findings)
    return findings
