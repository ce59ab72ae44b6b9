"""The read side: what staff views, the morning digest, the unit report, the exports and the
ops gauges read. Nothing here writes or locks a row.

Lists that can grow with the unit (report, exports) are streamed in chunks through a
server-side cursor (``yield_per``), so memory stays flat with a million answers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, Answer, CheckIn, DeadLetter, Episode, Patient, UnitMessage
from bot.domain.states import DUE_STATES, LIVE_STATUSES, AlertStatus, CheckInStatus

#: Check-in states that mean "the time point has come" (scheduled and cancelled ones have not).
PAST_CHECKIN_STATES = (
    CheckInStatus.SENDING,
    CheckInStatus.AWAITING,
    CheckInStatus.ANSWERED,
    CheckInStatus.PARTIAL,
    CheckInStatus.MISSED,
)


async def live_follow_ups(session: AsyncSession) -> Sequence[Row[Episode, str]]:
    """Follow-ups in progress (invited to paused) of patients not erased, with their label."""
    result = await session.execute(
        select(Episode, Patient.label)
        .join(Patient, Episode.patient_id == Patient.id)
        .where(Episode.status.in_(LIVE_STATUSES), Patient.erased_at.is_(None))
    )
    return result.all()


async def last_pain_by_episode(
    session: AsyncSession, *, episode_ids: Collection[int], question_ids: Collection[str]
) -> dict[int, int | None]:
    """Each episode's latest valid pain answer (any of ``question_ids``), in one query."""
    last_pain_ids = select(func.max(Answer.id)).where(
        Answer.episode_id.in_(episode_ids),
        Answer.question_id.in_(question_ids),
        Answer.status == "ok",
        Answer.value.is_not(None),
    )
    return {
        episode_id: value
        for episode_id, value in await session.execute(
            select(Answer.episode_id, Answer.value).where(
                Answer.id.in_(last_pain_ids.group_by(Answer.episode_id))
            )
        )
    }


async def last_past_checkin_by_episode(
    session: AsyncSession, *, episode_ids: Collection[int]
) -> dict[int, CheckIn]:
    """Each episode's latest check-in whose time has come (the patient list shows its state)."""
    last: dict[int, CheckIn] = {}
    for checkin in await session.scalars(
        select(CheckIn)
        .where(CheckIn.episode_id.in_(episode_ids), CheckIn.status.in_(PAST_CHECKIN_STATES))
        .order_by(CheckIn.due_at)
    ):
        last[checkin.episode_id] = checkin
    return last


async def unresolved_severities_by_episode(
    session: AsyncSession, *, episode_ids: Collection[int]
) -> dict[int, list[str]]:
    """The severities of each episode's unresolved alerts (the list sorts by the worst)."""
    found: dict[int, list[str]] = defaultdict(list)
    for episode_id, severity in await session.execute(
        select(Alert.episode_id, Alert.severity).where(
            Alert.episode_id.in_(episode_ids), Alert.status != AlertStatus.RESOLVED
        )
    ):
        found[episode_id].append(severity)
    return dict(found)


async def unresolved_alerts(session: AsyncSession) -> Sequence[Row[Alert, Episode, Patient]]:
    """Every alert not yet resolved, oldest first, with its episode and patient (``/alerts``
    and the morning digest)."""
    result = await session.execute(
        select(Alert, Episode, Patient)
        .join(Episode, Alert.episode_id == Episode.id)
        .join(Patient, Episode.patient_id == Patient.id)
        .where(Alert.status != AlertStatus.RESOLVED)
        .order_by(Alert.created_at, Alert.id)
    )
    return result.all()


async def past_checkins(session: AsyncSession, *, episode_id: int) -> list[CheckIn]:
    """The episode's check-ins whose time has come, in order (one patient's timeline)."""
    return list(
        await session.scalars(
            select(CheckIn)
            .where(CheckIn.episode_id == episode_id, CheckIn.status.in_(PAST_CHECKIN_STATES))
            .order_by(CheckIn.due_at)
        )
    )


async def checkins_of_episode(session: AsyncSession, *, episode_id: int) -> list[CheckIn]:
    """Every check-in of the episode, in order (the FHIR export writes one response each)."""
    return list(
        await session.scalars(
            select(CheckIn).where(CheckIn.episode_id == episode_id).order_by(CheckIn.due_at)
        )
    )


async def answers_of_episode(
    session: AsyncSession, *, episode_id: int, since: datetime | None = None
) -> list[Answer]:
    """The episode's answers and notes in the order they came (since ``since`` when given)."""
    query = (
        select(Answer).where(Answer.episode_id == episode_id).order_by(Answer.created_at, Answer.id)
    )
    if since is not None:
        query = query.where(Answer.created_at >= since)
    return list(await session.scalars(query))


async def alerts_of_episode(session: AsyncSession, *, episode_id: int) -> list[Alert]:
    """Every alert of the episode, resolved ones too, oldest first (the timeline shows them)."""
    return list(
        await session.scalars(
            select(Alert).where(Alert.episode_id == episode_id).order_by(Alert.created_at)
        )
    )


async def unit_messages_of_episode(session: AsyncSession, *, episode_id: int) -> list[UnitMessage]:
    """What the unit wrote to the patient through the bot, oldest first."""
    return list(
        await session.scalars(
            select(UnitMessage)
            .where(UnitMessage.episode_id == episode_id)
            .order_by(UnitMessage.created_at)
        )
    )


async def checkin_counts_by_status(
    session: AsyncSession, *, due_from: datetime, due_before: datetime
) -> dict[CheckInStatus, int]:
    """How many check-ins due in ``[due_from, due_before)`` ended in each state, cancelled ones
    left out (nobody was asked): the digest's response rate."""
    result = await session.execute(
        select(CheckIn.status, func.count())
        .where(
            CheckIn.due_at >= due_from,
            CheckIn.due_at < due_before,
            CheckIn.status != CheckInStatus.CANCELLED,
        )
        .group_by(CheckIn.status)
    )
    return {status: count for status, count in result.all()}


async def closed_checkin_counts(
    session: AsyncSession, *, since: datetime | None
) -> Sequence[Row[str, CheckInStatus, int]]:
    """(time point, state, count) of the check-ins whose time came and went (since ``since``):
    the report's response rate per time point."""
    query = (
        select(CheckIn.def_id, CheckIn.status, func.count())
        .where(CheckIn.status.in_(DUE_STATES))
        .group_by(CheckIn.def_id, CheckIn.status)
    )
    if since is not None:
        query = query.where(CheckIn.due_at >= since)
    return (await session.execute(query)).all()


async def pain_answers(
    session: AsyncSession, *, question_ids: Collection[str], since: datetime | None, chunk: int
) -> AsyncIterator[tuple[int, int | None]]:
    """(day since the procedure, value) of every valid pain answer, streamed in chunks."""
    query = select(Answer.day, Answer.value).where(
        Answer.question_id.in_(question_ids), Answer.status == "ok", Answer.value.is_not(None)
    )
    if since is not None:
        query = query.where(Answer.created_at >= since)
    stream = await session.stream(query.execution_options(yield_per=chunk))
    async for day, value in stream:
        yield day, value


async def alert_timings(
    session: AsyncSession, *, since: datetime | None
) -> Sequence[Row[str, str, AlertStatus, datetime, datetime | None]]:
    """(rule, severity, status, raised, acknowledged) of every alert raised since ``since``:
    the report's alerts per rule and time to acknowledgement."""
    query = select(
        Alert.rule_id, Alert.severity, Alert.status, Alert.created_at, Alert.acknowledged_at
    )
    if since is not None:
        query = query.where(Alert.created_at >= since)
    return (await session.execute(query)).all()


def _answer_rows(since: datetime | None) -> Select[*tuple[Any, ...]]:
    query: Select[*tuple[Any, ...]] = (
        select(
            Answer.episode_id,
            Patient.label,
            CheckIn.def_id,
            Answer.day,
            Answer.question_id,
            Answer.kind,
            Answer.raw_text,
            Answer.value,
            Answer.score,
            Answer.option_id,
            Answer.flags,
            Answer.status,
            Answer.created_at,
            Answer.choices,
        )
        .join(Episode, Answer.episode_id == Episode.id)
        .join(Patient, Episode.patient_id == Patient.id)
        .outerjoin(CheckIn, Answer.checkin_id == CheckIn.id)
        .where(Patient.erased_at.is_(None))
        .order_by(Answer.episode_id, Answer.created_at, Answer.id)
    )
    if since is not None:
        query = query.where(Answer.created_at >= since)
    return query


async def answer_rows(
    session: AsyncSession, *, since: datetime | None, chunk: int
) -> AsyncIterator[Row[*tuple[Any, ...]]]:
    """Every answer of patients not erased, with its label and time point, by episode then
    time, streamed in chunks (the CSV export: episode id, label, time point, day, question,
    kind, raw text, value, score, option, flags, status, answered at, choices)."""
    stream = await session.stream(_answer_rows(since).execution_options(yield_per=chunk))
    async for row in stream:
        yield row


async def episode_ids_with_answers(session: AsyncSession, *, since: datetime | None) -> list[int]:
    """The episodes of patients not erased that have answers (since ``since``), in id order:
    the FHIR export then reads them one at a time."""
    query = (
        select(Answer.episode_id)
        .join(Episode, Answer.episode_id == Episode.id)
        .join(Patient, Episode.patient_id == Patient.id)
        .where(Patient.erased_at.is_(None))
        .distinct()
        .order_by(Answer.episode_id)
    )
    if since is not None:
        query = query.where(Answer.created_at >= since)
    return list(await session.scalars(query))


async def unresolved_alert_count(session: AsyncSession) -> int:
    """How many alerts are open or acknowledged (an ops gauge)."""
    count = await session.scalar(
        select(func.count(Alert.id)).where(
            Alert.status.in_((AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED))
        )
    )
    return count or 0


async def oldest_unacknowledged(
    session: AsyncSession, *, severities: Collection[str]
) -> datetime | None:
    """When the oldest open alert of ``severities`` was raised (an ops gauge: nobody took it)."""
    return await session.scalar(
        select(func.min(Alert.created_at)).where(
            Alert.status == AlertStatus.OPEN, Alert.severity.in_(severities)
        )
    )


async def dead_letter_count(session: AsyncSession) -> int:
    """Updates set aside because they could not be read or handled (for the digest)."""
    return int(await session.scalar(select(func.count()).select_from(DeadLetter)) or 0)
