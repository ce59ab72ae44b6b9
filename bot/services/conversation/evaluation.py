"""Saving what the patient said, reading it against the protocol's rules, escalating findings.

Alerts are written in the answer's transaction; the patient gets the safety advice at once."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer, CheckIn, Episode
from bot.domain.parsing import Parsed
from bot.domain.protocol import Indication, Protocol
from bot.domain.rules import Finding, History, Observation, evaluate_answers, most_severe
from bot.domain.schedule import day_number
from bot.metrics import ANSWERS_SAVED
from bot.services import alerts, audit
from bot.services.context import ServiceContext
from bot.services.conversation.turn import Outbox

log = structlog.get_logger(__name__)


def save_answer(
    session: AsyncSession,
    episode: Episode,
    checkin: CheckIn | None,
    question_id: str | None,
    kind: str,
    raw: str | None,
    parsed: Parsed,
    now: datetime,
    message_id: int | None,
    *,
    flags: frozenset[str] | None = None,
    file_id: str | None = None,
) -> Answer:
    answer = Answer(
        episode_id=episode.id,
        checkin_id=checkin.id if checkin else None,
        question_id=question_id,
        kind=kind,
        raw_text=raw,
        value=parsed.value,
        option_id=parsed.option_id,
        flags=sorted(flags if flags is not None else parsed.flags),
        status=parsed.status,
        day=day_number(episode.procedure_at, now, episode.time_zone),
        file_id=file_id,
        telegram_message_id=message_id,
        created_at=now,
    )
    session.add(answer)
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
    rows = await session.execute(
        select(Answer, CheckIn.def_id)
        .outerjoin(CheckIn, Answer.checkin_id == CheckIn.id)
        .where(Answer.episode_id == episode.id)
        .order_by(Answer.created_at, Answer.id)
    )
    observations = []
    for answer, def_id in rows:
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
            )
        )
    return History(
        indication=Indication(episode.indication),
        baseline=episode.baseline_pain,
        observations=tuple(observations),
    )


async def escalate(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    findings: list[Finding],
    now: datetime,
) -> None:
    """Open alerts and give the patient safety advice at once (never waiting for staff)."""
    if not findings:
        return
    touched = await alerts.raise_findings(session, now=now, episode=episode, findings=findings)
    for alert in touched:
        alerts.schedule_escalation(alert, now=now, after=ctx.unit.reescalate_after)
    outbox.alerts.extend(touched)
    severity = most_severe(findings)
    if severity is not None:
        outbox.say(alerts.safety_advice(protocol, severity, language=episode.language, ctx=ctx))
        audit.record(
            session,
            at=now,
            actor="system",
            action="safety_advice_sent",
            episode_id=episode.id,
            severity=severity.value,
        )
    log.info("findings", episode_id=episode.id, count=len(findings))


async def evaluate(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    new: list[Observation],
    now: datetime,
) -> list[Finding]:
    await session.flush()
    history = await load_history(session, episode)
    findings = evaluate_answers(protocol, history, new)
    await escalate(session, ctx, outbox, protocol, episode, findings, now)
    return findings
