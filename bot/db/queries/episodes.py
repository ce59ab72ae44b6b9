"""A patient's episodes and what belongs to them: check-ins, enrolment links, the whole record.

(The check-in queries the conversation needs live here; the dispatcher's are in
``checkins``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, event, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import BindParameter

from bot.db.models import (
    Alert,
    Answer,
    AuditEvent,
    CheckIn,
    EnrolmentToken,
    Episode,
    OwedMessage,
    Patient,
    ProcessedUpdate,
)
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


@dataclass(frozen=True)
class TurnStart:
    """What one update needs before anything is written, read in one statement."""

    #: Telegram delivered this update before (it was handled, or is being handled elsewhere).
    redelivered: bool
    patient: Patient | None
    episode: Episode | None
    #: The check-in being answered (``awaiting``), if any.
    open_checkin: CheckIn | None
    #: Messages owed to the chat and not yet recorded as sent.
    unsent: int

    @property
    def found(self) -> tuple[Patient, Episode] | None:
        """The chat's patient and latest episode (None: unknown or erased)."""
        if self.patient is None or self.episode is None or self.patient.erased_at is not None:
            return None
        return self.patient, self.episode


#: The key of the open check-in read by :func:`turn_start` in ``session.info``.
_OPEN = "turn_start_open_checkin"


@cache
def _turn_start_query() -> Select[Any]:
    """Built once (aliases and subqueries cost more to build than to run), bound per call."""
    later = aliased(Episode)
    latest = (
        select(func.max(later.id))
        .where(later.patient_id == Patient.id)
        .correlate(Patient)
        .scalar_subquery()
    )
    chat_id: BindParameter[int] = bindparam("chat_id")
    seen = exists().where(ProcessedUpdate.update_id == bindparam("update_id"))
    unsent = (
        select(func.count(OwedMessage.id))
        .where(
            OwedMessage.chat_id == chat_id,
            OwedMessage.sent_at.is_(None),
            OwedMessage.dropped_at.is_(None),
        )
        .scalar_subquery()
    )
    one = select(literal(1).label("one")).subquery("one")
    awaiting = aliased(CheckIn)
    return (
        select(seen.label("seen"), unsent.label("unsent"), Patient, Episode, awaiting)
        .select_from(one)
        .outerjoin(Patient, Patient.chat_id == chat_id)
        .outerjoin(Episode, and_(Episode.patient_id == Patient.id, Episode.id == latest))
        .outerjoin(
            awaiting,
            and_(awaiting.episode_id == Episode.id, awaiting.status == CheckInStatus.AWAITING),
        )
        .limit(1)
    )


async def turn_start(session: AsyncSession, *, chat_id: int, update_id: int | None) -> TurnStart:
    """The duplicate-update check, the chat's patient and latest episode, the open check-in and
    the count of unsent owed messages, in one query (it was five). Nothing is written: the
    caller records the update id with its other rows (:func:`record_update`)."""
    # An update without an id (none in practice) is never a redelivery: -1 is no update's id.
    params = {"chat_id": chat_id, "update_id": update_id if update_id is not None else -1}
    row = (await session.execute(_turn_start_query(), params)).one()
    start = TurnStart(
        redelivered=bool(row[0]),
        patient=row[2],
        episode=row[3],
        open_checkin=row[4],
        unsent=int(row[1] or 0),
    )
    if start.episode is not None:
        session.info[_OPEN] = (start.episode.id, start.open_checkin)
    return start


def record_update(session: AsyncSession, *, update_id: int, now: datetime) -> None:
    """Record the update id, written with the turn's other rows (a concurrent delivery of the
    same update then fails on the primary key at the flush, and is retried as a redelivery)."""
    session.add(ProcessedUpdate(update_id=update_id, processed_at=now))


@event.listens_for(Session, "after_flush")
def _forget_open_checkin(session: Session, _context: object) -> None:
    """Once something is written, the open check-in read at the start may be stale."""
    session.info.pop(_OPEN, None)


def _unchanged(session: Session) -> bool:
    """Nothing but the update id is waiting to be written (a query would see what we read)."""
    return (
        not session.dirty
        and not session.deleted
        and all(isinstance(row, ProcessedUpdate) for row in session.new)
    )


async def open_checkin(session: AsyncSession, *, episode_id: int) -> CheckIn | None:
    """The check-in the patient is answering now, if any (at most one is open); no query when
    :func:`turn_start` read it and nothing was written since."""
    known = session.info.get(_OPEN)
    if known is not None and known[0] == episode_id and _unchanged(session.sync_session):
        return known[1]  # type: ignore[no-any-return]
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
