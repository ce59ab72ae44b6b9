"""Many patients with a check-in due, written straight into the database.

Going through /start and consent for a thousand patients would test the conversation, not the
dispatcher, and take minutes; these rows are what consent leaves behind: an active episode of
the real protocol version (same snapshot as the bot registers) and one scheduled check-in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import ManualClock
from bot.db.models import CheckIn, Episode, Patient
from bot.protocols import ProtocolRegistry, default_schedules_dir
from bot.services.context import ProtocolStore

#: First chat id of the population: far from the ids the harness's own patients use.
CHAT_BASE = 700_000


async def populate(
    sessions: async_sessionmaker[AsyncSession],
    *,
    count: int,
    due_at: datetime,
    chat_base: int = CHAT_BASE,
    def_id: str = "d1",
    window: timedelta = timedelta(hours=10),
) -> list[int]:
    """``count`` active follow-ups with check-in ``def_id`` due at ``due_at``; their chat ids."""
    registry = ProtocolRegistry.from_dir(default_schedules_dir())
    protocol = registry.latest("knee-cryoneurolysis")
    chats = [chat_base + index for index in range(count)]
    async with sessions.begin() as session:
        row = await ProtocolStore(registry).row_for(session, protocol, ManualClock(due_at))
        for chat_id in chats:
            patient = Patient(label=f"L-{chat_id}", chat_id=chat_id, created_at=due_at)
            episode = Episode(
                patient=patient,
                protocol_version_id=row,
                procedure_at=due_at - timedelta(days=1, hours=1),
                time_zone="Europe/Paris",
                side="left",
                indication="osteoarthritis",
                language="fr",
                status="active",
                baseline_pain=6,
                baseline_source="staff",
                consent_version=protocol.consent.version,
                consented_at=due_at - timedelta(days=1),
                reask_count=0,
                created_at=due_at - timedelta(days=2),
                created_by="test",
            )
            session.add(
                CheckIn(
                    episode=episode,
                    def_id=def_id,
                    due_at=due_at,
                    window_ends_at=due_at + window,
                    status="scheduled",
                    attempts=0,
                    question_index=0,
                    reask_count=0,
                    selection=[],
                    reminders_sent=0,
                    opening_sent=0,
                )
            )
    return chats
