"""A real six-month follow-up played through the services (no Telegram, no HTTP): enrol, link,
consent, baseline, then every check-in answered button by button as a patient would, with the
real dispatcher on a manual clock. Exports, the report and the chart are tested on its rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import CheckIn, Episode
from bot.db.session import create_engine, make_sessionmaker, upgrade_database
from bot.domain.protocol import Indication, KneeSide
from bot.protocols import ProtocolRegistry, default_schedules_dir
from bot.services import conversation, dispatch, enrolment
from bot.services.context import ProtocolStore, ServiceContext, UnitSettings
from bot.services.ports import OutgoingMessage, SentRef
from tests.harness import TestDatabase

PARIS = ZoneInfo("Europe/Paris")
STAFF_CHAT = -1001000000001
#: Pain (pain_avg, or pain_evening on day 0) per check-in of the real protocol.
PAIN = {
    "d0_evening": 4,
    "d1": 5,
    "d2": 8,
    "d3": 5,
    "d7": 4,
    "d14": 3,
    "w6": 2,
    "m3": 3,
    "m6": 5,
}
#: Swelling option index (none, mild, moderate, severe) per check-in.
SWELLING = {"d0_evening": 1, "d1": 2, "d2": 1, "d3": 1, "d7": 0}
#: KOOS JR item answers (option index = value 0-4) at the three time points that ask them.
KOOS = {"w6": 1, "m3": 1, "m6": 2}


@dataclass
class RecordingMessenger:
    """Keeps what the services sent, per chat; never fails."""

    sent: dict[int, list[OutgoingMessage]] = field(default_factory=dict)
    _next_id: int = 1

    async def send(self, chat_id: int, message: OutgoingMessage) -> SentRef:
        self.sent.setdefault(chat_id, []).append(message)
        self._next_id += 1
        return SentRef(chat_id, self._next_id)

    async def edit(self, ref: SentRef, message: OutgoingMessage) -> None:
        return None

    async def forward(self, chat_id: int, from_chat_id: int, message_id: int) -> SentRef:
        self._next_id += 1
        return SentRef(chat_id, self._next_id)

    async def check_chat(self, chat_id: int) -> None:
        return None  # every team chat takes messages


@dataclass
class Services:
    """A service context on a test database, its manual clock and messenger."""

    ctx: ServiceContext
    clock: ManualClock
    messenger: RecordingMessenger


@asynccontextmanager
async def services(database: TestDatabase, start: datetime) -> AsyncIterator[Services]:
    """Migrated database, the real protocol, a manual clock: what the running bot has, minus
    Telegram."""
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade_database(engine)
        sessions = make_sessionmaker(engine)
        clock = ManualClock(start)
        store = ProtocolStore(ProtocolRegistry.from_dir(default_schedules_dir()))
        async with sessions.begin() as session:
            await store.register_all(session, clock)
        messenger = RecordingMessenger()
        ctx = ServiceContext(
            sessions=sessions,
            messenger=messenger,
            clock=clock,
            unit=UnitSettings(
                unit_name="Radiologie interventionnelle",
                unit_phone="01 23 45 67 89",
                oncall_phone="01 98 76 54 32",
                staff_chat_id=STAFF_CHAT,
                oncall_chat_id=None,
                staff_user_ids=(5001,),
                time_zone="Europe/Paris",
            ),
            protocols=store,
        )
        try:
            yield Services(ctx, clock, messenger)
        finally:
            await ctx.close()
    finally:
        await engine.dispose()


async def play_course(
    svc: Services,
    *,
    label: str = "P-100",
    chat_id: int = 7001,
    procedure_at: datetime | None = None,
    baseline: int = 6,
    until: str | None = None,
) -> int:
    """Enrol and consent a patient, then answer every check-in (up to ``until``); returns the
    episode id."""
    ctx, clock = svc.ctx, svc.clock
    procedure_at = procedure_at or datetime(2026, 12, 1, 9, 30, tzinfo=PARIS)
    clock.set(procedure_at + timedelta(hours=1))
    invitation = await enrolment.enrol(
        ctx,
        label=label,
        procedure_at=procedure_at,
        side=KneeSide.LEFT,
        indication=Indication.OSTEOARTHRITIS,
        language="fr",
        protocol=ctx.protocols.registry.latest("knee-cryoneurolysis"),
    )
    await conversation.handle_start(
        ctx, chat_id=chat_id, token=invitation.token, update_id=None, language_code="fr"
    )
    for data in ("c:y", f"b:{baseline}"):
        await conversation.handle_button(
            ctx, chat_id=chat_id, data=data, update_id=None, message_id=None
        )
    protocol = ctx.protocols.registry.latest("knee-cryoneurolysis")
    async with ctx.sessions() as session:
        checkins = list(
            await session.scalars(
                select(CheckIn)
                .where(CheckIn.episode_id == invitation.episode_id)
                .order_by(CheckIn.due_at)
            )
        )
    for planned in checkins:
        if planned.status != "scheduled":
            continue
        clock.set(planned.due_at + timedelta(minutes=5))
        await dispatch.tick(ctx)
        for _ in range(40):
            async with ctx.sessions() as session:
                checkin = await session.get(CheckIn, planned.id)
                episode = await session.get(Episode, invitation.episode_id)
            assert checkin is not None and episode is not None
            if checkin.status != "awaiting" or episode.awaiting is not None:
                break
            questions = protocol.questions_for(checkin.def_id, Indication.OSTEOARTHRITIS)
            index = checkin.question_index
            question = questions[index]
            prefix = f"a:{checkin.id}:{index}:"
            if question.type == "scale":
                value = PAIN[checkin.def_id] if question.id.startswith("pain") else 0
                data = f"{prefix}{value}"
            elif question.type == "choice":
                if question.id == "swelling":
                    data = f"{prefix}{SWELLING.get(checkin.def_id, 0)}"
                elif question.score == "koos_jr":
                    data = f"{prefix}{KOOS[checkin.def_id]}"
                else:
                    data = f"{prefix}0"
            elif question.type == "yes_no":
                data = f"{prefix}0"
            elif question.type in ("checklist", "painkillers"):
                data = f"n:{checkin.id}:{index}"  # none of these / no painkiller
            elif question.type == "text" and question.optional:
                await conversation.handle_text(
                    ctx,
                    chat_id=chat_id,
                    text=f"RAS, merci ({checkin.def_id})",
                    update_id=None,
                    message_id=None,
                )
                continue
            else:
                data = f"{prefix}s"
            clock.advance(timedelta(seconds=30))
            await conversation.handle_button(
                ctx, chat_id=chat_id, data=data, update_id=None, message_id=None
            )
        if until is not None and planned.def_id == until:
            break
    return invitation.episode_id
