"""The read side of the outcomes report (``python -m bot outcomes``): episodes and the answers
it scores. Nothing here writes or locks a row."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer, CheckIn, Episode, Patient
from bot.domain.states import CheckInStatus, EpisodeStatus

#: Follow-ups that started: the patient consented (refused and never-opened links are no data).
STARTED = (
    EpisodeStatus.ACTIVE,
    EpisodeStatus.PAUSED,
    EpisodeStatus.STOPPED,
    EpisodeStatus.COMPLETED,
)


async def outcome_episodes(
    session: AsyncSession, *, since: datetime | None, indications: Collection[str] | None
) -> Sequence[Row[Episode, str]]:
    """Started follow-ups of patients not erased (procedure since ``since``), with labels."""
    query = (
        select(Episode, Patient.label)
        .join(Patient, Episode.patient_id == Patient.id)
        .where(Episode.status.in_(STARTED), Patient.erased_at.is_(None))
        .order_by(Episode.id)
    )
    if since is not None:
        query = query.where(Episode.procedure_at >= since)
    if indications is not None:
        query = query.where(Episode.indication.in_(indications))
    return (await session.execute(query)).all()


async def outcome_answers(
    session: AsyncSession, *, episode_ids: Collection[int], question_ids: Collection[str]
) -> Sequence[Row[*tuple[Any, ...]]]:
    """(episode, time point, question, value, score, choices, day) of every understood answer
    to ``question_ids`` at a check-in, oldest first (the last one of a check-in counts)."""
    query = (
        select(
            Answer.episode_id,
            CheckIn.def_id,
            Answer.question_id,
            Answer.value,
            Answer.score,
            Answer.choices,
            Answer.day,
        )
        .join(CheckIn, Answer.checkin_id == CheckIn.id)
        .where(
            Answer.episode_id.in_(episode_ids),
            Answer.question_id.in_(question_ids),
            Answer.status == "ok",
        )
        .order_by(Answer.episode_id, Answer.created_at, Answer.id)
    )
    return (await session.execute(query)).all()


async def outcome_checkins(
    session: AsyncSession, *, episode_ids: Collection[int]
) -> Sequence[Row[int, str, CheckInStatus]]:
    """(episode, time point, state) of every check-in of these episodes."""
    query = select(CheckIn.episode_id, CheckIn.def_id, CheckIn.status).where(
        CheckIn.episode_id.in_(episode_ids)
    )
    return (await session.execute(query)).all()
