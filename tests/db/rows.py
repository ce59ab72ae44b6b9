"""Rows written straight into the database, with defaults, so a query test states only what
its query looks at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, Answer, CheckIn, Episode, OwedMessage, Patient, ProtocolVersion
from bot.domain.states import AlertDelivery, AlertStatus, CheckInStatus, EpisodeStatus

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def follow_up(
    session: AsyncSession,
    label: str,
    *,
    status: EpisodeStatus = EpisodeStatus.ACTIVE,
    chat_id: int | None = None,
    **fields: Any,
) -> Episode:
    """A patient ``label`` with one episode (flushed, so it has its id)."""
    version = await session.scalar(select(ProtocolVersion.id))
    if version is None:
        row = ProtocolVersion(
            protocol_id="test", version=1, sha256="0" * 64, content="{}", loaded_at=NOW
        )
        session.add(row)
        await session.flush()
        version = row.id
    patient = await session.scalar(select(Patient).where(Patient.label == label))
    if patient is None:
        patient = Patient(label=label, chat_id=chat_id, created_at=NOW)
    values: dict[str, Any] = {
        "procedure_at": NOW - timedelta(days=1),
        "time_zone": "Europe/Paris",
        "side": "left",
        "indication": "osteoarthritis",
        "language": "fr",
        "reask_count": 0,
        "created_at": NOW - timedelta(days=2),
        "created_by": "test",
        **fields,
    }
    episode = Episode(patient=patient, protocol_version_id=version, status=status, **values)
    session.add(episode)
    await session.flush()
    return episode


def checkin(
    session: AsyncSession,
    episode: Episode,
    def_id: str,
    *,
    due_at: datetime,
    window: timedelta = timedelta(hours=10),
    status: CheckInStatus = CheckInStatus.SCHEDULED,
    **fields: Any,
) -> CheckIn:
    """A check-in of ``episode`` due at ``due_at`` (added, not flushed)."""
    row = CheckIn(
        episode_id=episode.id,
        def_id=def_id,
        due_at=due_at,
        window_ends_at=due_at + window,
        status=status,
        **{
            "attempts": 0,
            "question_index": 0,
            "reask_count": 0,
            "selection": [],
            "reminders_sent": 0,
            **fields,
        },
    )
    session.add(row)
    return row


def answer(
    session: AsyncSession,
    episode: Episode,
    *,
    checkin: CheckIn | None = None,
    question_id: str | None = "pain_avg",
    value: int | None = 5,
    status: str = "ok",
    created_at: datetime = NOW,
    **fields: Any,
) -> Answer:
    """An answer of ``episode`` (to ``checkin`` when given; added, not flushed)."""
    row = Answer(
        episode_id=episode.id,
        checkin_id=checkin.id if checkin is not None else None,
        question_id=question_id,
        value=value,
        status=status,
        created_at=created_at,
        **{"kind": "button", "flags": [], "day": 1, **fields},
    )
    session.add(row)
    return row


def alert(
    session: AsyncSession,
    episode: Episode,
    rule_id: str,
    *,
    severity: str = "review",
    status: AlertStatus = AlertStatus.OPEN,
    created_at: datetime = NOW,
    delivery: AlertDelivery = AlertDelivery.PENDING,
    **fields: Any,
) -> Alert:
    """An alert of ``episode`` (added, not flushed); open alerts get ``open_key`` 1."""
    row = Alert(
        episode_id=episode.id,
        rule_id=rule_id,
        severity=severity,
        status=status,
        created_at=created_at,
        delivery=delivery,
        **{
            "open_key": 1 if status != AlertStatus.RESOLVED else None,
            "evidence": [],
            "updated_at": created_at,
            "delivery_attempts": 0,
            "escalation_count": 0,
            "needs_edit": False,
            **fields,
        },
    )
    session.add(row)
    return row


def owed(chat: int, text: str, *, urgent: bool = False) -> OwedMessage:
    """An owed text message to ``chat``, claimed by process ``p1`` and not sent yet."""
    return OwedMessage(
        chat_id=chat,
        episode_id=None,
        payload={"text": text, "buttons": []},
        urgent=urgent,
        created_at=NOW,
        claimed_by="p1",
        claimed_at=NOW,
        attempts=0,
    )
