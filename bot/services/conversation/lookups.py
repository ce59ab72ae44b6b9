"""Finding the patient, the episode and the open check-in of a chat; recording update ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import CheckIn, Episode, Patient, ProcessedUpdate
from bot.domain.states import LIVE_STATUSES, CheckInStatus


async def already_processed(session: AsyncSession, update_id: int | None, now: datetime) -> bool:
    """Record the update id; True when Telegram delivered it before (idempotency)."""
    if update_id is None:
        return False
    if await session.get(ProcessedUpdate, update_id) is not None:
        return True
    session.add(ProcessedUpdate(update_id=update_id, processed_at=now))
    await session.flush()
    return False


async def patient_episode(session: AsyncSession, chat_id: int) -> tuple[Patient, Episode] | None:
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


async def live_episode(session: AsyncSession, chat_id: int) -> tuple[Patient, Episode] | None:
    found = await patient_episode(session, chat_id)
    if found is None or found[1].status not in LIVE_STATUSES:
        return None
    return found


async def open_checkin(session: AsyncSession, episode_id: int) -> CheckIn | None:
    """The check-in the patient is answering now, if any (at most one is open)."""
    return await session.scalar(
        select(CheckIn).where(
            CheckIn.episode_id == episode_id, CheckIn.status == CheckInStatus.AWAITING
        )
    )
