"""A patient's episodes and what belongs to them: check-ins, enrolment links, the whole record.

(The check-in queries the conversation needs live here; the dispatcher's are in
``checkins``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, Answer, AuditEvent, CheckIn, EnrolmentToken, Episode, Patient
from bot.domain.states import CheckInStatus

#: Check-ins a stop closes: still to send, being sent, or being answered.
UNFINISHED = (CheckInStatus.SCHEDULED, CheckInStatus.SENDING, CheckInStatus.AWAITING)


async def patient_episode(session: AsyncSession, *, chat_id: int) -> tuple[Patient, Episode] | None:
    """The chat's patient and their latest episode, whatever its status (None: unknown/erased)."""
    patient = await session.scalar(select(Patient).where(Patient.chat_id == chat_id))
    if patient is None or patient.erased_at is not None:
        return None
    episode = await session.scalar(
        select(Episode).where(Episode.patient_id == patient.id).order_by(Episode.id.desc())
    )
    if episode is None:
        return None
    return patient, episode


async def open_checkin(session: AsyncSession, *, episode_id: int) -> CheckIn | None:
    """The check-in the patient is answering now, if any (at most one is open)."""
    return await session.scalar(
        select(CheckIn).where(
            CheckIn.episode_id == episode_id, CheckIn.status == CheckInStatus.AWAITING
        )
    )


async def next_checkin_due(
    session: AsyncSession, *, episode_id: int, after: datetime | None = None
) -> datetime | None:
    """When the episode's next scheduled check-in is due (only those due after ``after``)."""
    query = select(CheckIn.due_at).where(
        CheckIn.episode_id == episode_id, CheckIn.status == CheckInStatus.SCHEDULED
    )
    if after is not None:
        query = query.where(CheckIn.due_at > after)
    return await session.scalar(query.order_by(CheckIn.due_at))


async def unfinished_checkins(session: AsyncSession, *, episode_id: int) -> list[CheckIn]:
    """The episode's check-ins still to send, being sent or being answered."""
    rows = await session.scalars(
        select(CheckIn)
        .where(CheckIn.episode_id == episode_id, CheckIn.status.in_(UNFINISHED))
        .order_by(CheckIn.due_at)
    )
    return list(rows)


async def is_episode_link(session: AsyncSession, *, episode_id: int, token_hash: str) -> bool:
    """True when the link whose token hashes to ``token_hash`` is one of the episode's."""
    found = await session.scalar(
        select(EnrolmentToken.id).where(
            EnrolmentToken.token_hash == token_hash, EnrolmentToken.episode_id == episode_id
        )
    )
    return found is not None


async def unused_links(session: AsyncSession, *, episode_id: int) -> list[EnrolmentToken]:
    """The episode's enrolment links nobody has opened yet."""
    rows = await session.scalars(
        select(EnrolmentToken).where(
            EnrolmentToken.episode_id == episode_id, EnrolmentToken.used_at.is_(None)
        )
    )
    return list(rows)


async def episodes_of_patient(session: AsyncSession, *, patient_id: int) -> list[Episode]:
    """Every episode of a patient, oldest first."""
    rows = await session.scalars(
        select(Episode).where(Episode.patient_id == patient_id).order_by(Episode.id)
    )
    return list(rows)


@dataclass(frozen=True)
class EpisodeRecord:
    """Everything stored for one episode, each part in time order."""

    checkins: list[CheckIn]
    answers: list[Answer]
    alerts: list[Alert]
    events: list[AuditEvent]


async def episode_record(session: AsyncSession, *, episode_id: int) -> EpisodeRecord:
    """The episode's check-ins, answers, alerts and audit events (the patient's copy of it)."""
    checkins = await session.scalars(
        select(CheckIn).where(CheckIn.episode_id == episode_id).order_by(CheckIn.due_at)
    )
    answers = await session.scalars(
        select(Answer).where(Answer.episode_id == episode_id).order_by(Answer.created_at, Answer.id)
    )
    alerts = await session.scalars(
        select(Alert).where(Alert.episode_id == episode_id).order_by(Alert.created_at)
    )
    events = await session.scalars(
        select(AuditEvent)
        .where(AuditEvent.episode_id == episode_id)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return EpisodeRecord(
        checkins=list(checkins), answers=list(answers), alerts=list(alerts), events=list(events)
    )
