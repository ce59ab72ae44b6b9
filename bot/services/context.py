"""What every use case needs, gathered once: sessions, the messenger, the clock, protocols."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.db.models import ProtocolVersion
from bot.db.priority import PriorityGate
from bot.domain.protocol import Protocol
from bot.errors import ProtocolError
from bot.protocols import ProtocolRegistry
from bot.services.ports import Messenger
from bot.services.sent_log import SentLog

log = structlog.get_logger(__name__)

#: Patient updates inside their transaction at once: fewer than the PostgreSQL pool's
#: connections, so an urgent turn (let in first) never waits for one behind the crowd.
TURNS_AT_ONCE = 8
#: On SQLite, which writes one transaction at a time: more turns inside only wait at its
#: write gate holding connections. In a 1,000-reply burst, 2 instead of 8 cut the staff
#: card's p99 from 1.0-1.3 s to ~0.9 s at the same answers per second.
SQLITE_TURNS_AT_ONCE = 2


@dataclass(frozen=True)
class UnitSettings:
    """The unit's own numbers and chats, as services need them."""

    #: The unit's name in any language without its own in ``unit_name_by_language``.
    unit_name: str
    unit_phone: str
    oncall_phone: str
    staff_chat_id: int | None
    oncall_chat_id: int | None
    staff_user_ids: tuple[int, ...]
    time_zone: str
    token_ttl: timedelta = timedelta(days=7)
    reescalate_after: timedelta = timedelta(minutes=15)
    digest_time: str = "08:30"
    bot_username: str = "cryo_followup_bot"
    media_dir: str = "media"
    media_max_bytes: int = 5_000_000
    #: The language of everything the unit's staff read (STAFF_LANGUAGE): cards, lists,
    #: replies, errors, dialogs, notices, the digest. Patients keep their own.
    staff_language: str = "fr"
    unit_name_by_language: Mapping[str, str] = field(default_factory=dict)

    def unit_name_in(self, language: str) -> str:
        """The unit's name as patients of ``language`` know it ("Interventional Radiology")."""
        return self.unit_name_by_language.get(language, self.unit_name)


@dataclass
class ProtocolStore:
    """Protocols by database row: an episode reads the exact version it was enrolled with."""

    registry: ProtocolRegistry
    _by_row: dict[int, Protocol] = field(default_factory=dict)
    _row_of: dict[tuple[str, int], int] = field(default_factory=dict)

    async def register_all(self, session: AsyncSession, now_factory: Clock) -> None:
        """Store each loaded file version; a file changed without a version bump is refused."""
        for protocol in self.registry.all():
            await self.row_for(session, protocol, now_factory)

    async def row_for(self, session: AsyncSession, protocol: Protocol, clock: Clock) -> int:
        """The protocol_versions row of this version, created on first use."""
        key = (protocol.id, protocol.version)
        if key in self._row_of:
            return self._row_of[key]
        content = protocol.model_dump_json()
        # Approval is a signature on the content, not content: approving the version a unit
        # tested must not force a version bump, so the digest leaves it out. So are the
        # questions' staff labels: naming a question for staff changes nothing a patient sees.
        clinical = protocol.model_dump_json(
            exclude={"approved_by": True, "approved_on": True, "questions": {"__all__": {"label"}}}
        )
        digest = hashlib.sha256(clinical.encode()).hexdigest()
        row = await session.scalar(
            select(ProtocolVersion).where(
                ProtocolVersion.protocol_id == protocol.id,
                ProtocolVersion.version == protocol.version,
            )
        )
        if row is None:
            # ON CONFLICT DO NOTHING: processes starting together register the same version.
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            await session.execute(
                insert(ProtocolVersion)
                .values(
                    protocol_id=protocol.id,
                    version=protocol.version,
                    sha256=digest,
                    content=content,
                    loaded_at=clock.now(),
                )
                .on_conflict_do_nothing(index_elements=["protocol_id", "version"])
            )
            row = await session.scalar(
                select(ProtocolVersion).where(
                    ProtocolVersion.protocol_id == protocol.id,
                    ProtocolVersion.version == protocol.version,
                )
            )
            assert row is not None
        if row.sha256 == digest and row.content != content:
            row.content = content  # same clinical content, newly approved: keep the signature
        if row.sha256 != digest:
            raise ProtocolError(
                protocol.id,
                [
                    (
                        "version",
                        f"version {protocol.version} is already in use with other content: "
                        "increase `version` when you change the protocol",
                    )
                ],
            )
        self._row_of[key] = row.id
        self._by_row[row.id] = protocol
        return row.id

    async def protocol_of(self, session: AsyncSession, row_id: int) -> Protocol:
        """The protocol version stored in row ``row_id`` (from the database snapshot if needed)."""
        cached = self._by_row.get(row_id)
        if cached is not None:
            return cached
        row = await session.get(ProtocolVersion, row_id)
        if row is None:
            raise LookupError(f"protocol version row {row_id} does not exist")
        protocol = Protocol.model_validate_json(row.content)
        self._by_row[row_id] = protocol
        self._row_of[(protocol.id, protocol.version)] = row_id
        return protocol


@dataclass
class ServiceContext:
    """Everything the use cases share; built once by the entry point."""

    sessions: async_sessionmaker[AsyncSession]
    messenger: Messenger
    clock: Clock
    unit: UnitSettings
    protocols: ProtocolStore
    process_id: str = "main"
    #: One dispatcher tick at a time in this process (wake-ups, tests and staff actions share it).
    tick_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Called when a new due time may be earlier than the dispatcher's next wake-up.
    on_schedule_changed: Callable[[], None] = field(default=lambda: None)
    #: Patient turns in their transaction, urgent ones let in first (bot.db.priority).
    turn_gate: PriorityGate = field(default_factory=lambda: PriorityGate(TURNS_AT_ONCE))
    #: Owed messages Telegram took, written as sent in batches.
    sent_log: SentLog = field(default_factory=SentLog)

    async def close(self) -> None:
        """Before the engine is disposed: what Telegram took is written as sent.

        Left to the sent log's timer, those sends were either lost with the process (sent again
        after a restart) or written by a task that ``asyncio.run`` cancels inside the database
        driver, which can leave a SQLite transaction open and the write lock taken."""
        await self.sent_log.close()
