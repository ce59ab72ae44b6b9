"""Typed SQLAlchemy models: the single source of truth for everything that must survive a restart.

No real names, phone numbers or birth dates: a patient is a pseudonymous label chosen by the unit.
All datetimes are aware and stored in UTC (:class:`UTCDateTime` re-attaches UTC on SQLite).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.domain.states import (
    AlertDelivery,
    AlertStatus,
    Awaiting,
    CheckInStatus,
    EpisodeStatus,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes: a naive time in a clinical schedule is a bug."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back aware UTC datetimes."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class StateType(TypeDecorator[E]):
    """A state enum stored as its string value (readable rows, unchanged migrations)."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        """Refuse a value that is not one of the enum's (a typo must not reach the database)."""
        return None if value is None else str(self.enum(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        """Give back the enum member."""
        return None if value is None else self.enum(value)


class AwaitingType(TypeDecorator[Awaiting]):
    """What the conversation waits for, stored as ``consent``, ``baseline`` or ``clarify:<flag>``."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Awaiting | None, dialect: Dialect) -> str | None:
        """Store the compact string form."""
        return None if value is None else value.stored()

    def process_result_value(self, value: str | None, dialect: Dialect) -> Awaiting | None:
        """Read it back as a typed value."""
        return None if value is None else Awaiting.parse(value)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so Alembic can alter constraints later."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class ProtocolVersion(Base):
    """A protocol file as it was when first used: episodes point here, never at the live file."""

    __tablename__ = "protocol_versions"
    __table_args__ = (UniqueConstraint("protocol_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime]


class Patient(Base):
    """A person followed by the unit, known only by the unit's own label."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(64), unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime]
    erased_at: Mapped[datetime | None]
    #: When the patient asked for erasure (/delete); staff decide and run ``python -m bot erase``.
    erasure_requested_at: Mapped[datetime | None]

    episodes: Mapped[list[Episode]] = relationship(back_populates="patient")


class Episode(Base):
    """One procedure and its follow-up; keeps the protocol version it was enrolled with."""

    __tablename__ = "episodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    protocol_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    procedure_at: Mapped[datetime]
    time_zone: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(16))
    indication: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[EpisodeStatus] = mapped_column(StateType(EpisodeStatus), index=True)
    baseline_pain: Mapped[int | None]
    baseline_source: Mapped[str | None] = mapped_column(String(16))
    consent_version: Mapped[int | None]
    consented_at: Mapped[datetime | None]
    blocked_at: Mapped[datetime | None]
    awaiting: Mapped[Awaiting | None] = mapped_column(AwaitingType())
    reask_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    #: Staff control (bot.services.followup): when paused/stopped, and the stop reason they gave.
    paused_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(Text)

    patient: Mapped[Patient] = relationship(back_populates="episodes")
    protocol_version: Mapped[ProtocolVersion] = relationship()


class EnrolmentToken(Base):
    """A single-use deep-link token; only its SHA-256 is stored."""

    __tablename__ = "enrolment_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class CheckIn(Base):
    """One time point of an episode: scheduled → sending → awaiting → answered|partial|missed.

    ``cancelled`` covers time points that fell before consent or into quiet hours.
    ``question_index`` is the conversation position; ``selection`` holds checklist ticks.
    """

    __tablename__ = "checkins"
    __table_args__ = (
        Index("ix_checkins_status_due_at", "status", "due_at"),
        # Expiry looks up open rows by window end: without it every tick scans the table.
        Index("ix_checkins_status_window_ends_at", "status", "window_ends_at"),
        # A tick reads only the rows it acts on (due, expired, held by a process): partial
        # indexes keep its cost proportional to them, not to the table (migration 0005).
        *(
            Index(name, *columns, sqlite_where=text(where), postgresql_where=text(where))
            for name, columns, where in (
                ("ix_checkins_due", ("due_at",), "status = 'scheduled'"),
                (
                    "ix_checkins_open_window",
                    ("window_ends_at",),
                    "status IN ('awaiting', 'scheduled')",
                ),
                (
                    "ix_checkins_held_claims",
                    ("claimed_by", "claimed_at"),
                    "status = 'sending' OR (status = 'awaiting' AND sent_at IS NULL"
                    " AND question_index = 0 AND reask_count = 0)",
                ),
            )
        ),
        UniqueConstraint("episode_id", "def_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    def_id: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    window_ends_at: Mapped[datetime]
    status: Mapped[CheckInStatus] = mapped_column(StateType(CheckInStatus))
    status_reason: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    question_index: Mapped[int] = mapped_column(Integer, default=0)
    reask_count: Mapped[int] = mapped_column(Integer, default=0)
    selection: Mapped[list[str]] = mapped_column(JSON, default=list)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_reminder_at: Mapped[datetime | None]
    #: Not before this time: a failed send waits (RetryAfter, backoff) without blocking others.
    retry_at: Mapped[datetime | None]
    #: Opening messages (information, first question) already delivered: a retry sends the rest.
    opening_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    episode: Mapped[Episode] = relationship()


class Answer(Base):
    """Every reply, raw text beside the parsed value; notes have no check-in."""

    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_episode_created", "episode_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    checkin_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id"), index=True)
    question_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    raw_text: Mapped[str | None] = mapped_column(Text)
    value: Mapped[int | None]
    option_id: Mapped[str | None] = mapped_column(String(32))
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    day: Mapped[int]
    file_id: Mapped[str | None] = mapped_column(String(256))
    file_path: Mapped[str | None] = mapped_column(String(512))
    #: A computed score at full precision (KOOS JR interval score); ``value`` holds it rounded.
    score: Mapped[float | None]
    #: What a multi-choice answer chose (painkiller classes taken; empty: none; migration 0008).
    choices: Mapped[list[str] | None] = mapped_column(JSON)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class ProcessedUpdate(Base):
    """Telegram update ids already handled: a redelivered update changes nothing."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime]


class InboxUpdate(Base):
    """An update fetched by polling and not yet handled: kept so it can be confirmed to Telegram
    at once (bot/services/inbox.py).

    getUpdates returns only the 100 updates after the lowest unconfirmed one, so confirming
    only what is handled made an urgent update wait behind every reply fetched before it.
    Stored first (one statement per batch) and confirmed next, an update is never only in
    memory: a process killed before handling it leaves it here, and whoever polls next handles
    it. ``raw`` is the JSON exactly as Telegram sent it (a patient's words: never logged).
    """

    __tablename__ = "inbox_updates"

    #: The token's first part (not a secret): update ids are per bot.
    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    raw: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class OwedMessage(Base):
    """A message the bot owes a patient (the next question, "noted", the safety advice).

    Written in the same transaction as the answer that caused it, so a crash between the commit
    and the send loses nothing: whoever holds no claim on it (this process after the commit,
    any process once the claim is stale or its holder dead) sends it, in ``id`` order per chat.
    """

    __tablename__ = "owed_messages"
    __table_args__ = (
        Index(
            "ix_owed_messages_unsent",
            "chat_id",
            "id",
            sqlite_where=text("sent_at IS NULL AND dropped_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND dropped_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"))
    #: The message as ``{"text": ..., "buttons": [[[label, data], ...], ...]}``.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Safety advice: sent before anything ordinary that waits.
    urgent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    #: Given up (the patient blocked the bot, or Telegram refuses it for good).
    dropped_at: Mapped[datetime | None]
    drop_reason: Mapped[str | None] = mapped_column(String(64))


class DeadLetter(Base):
    """An update set aside after it could not be read or handled (a "poison" update).

    Intake goes on without it; staff see how many there are, never their content. ``raw`` is
    the update's JSON exactly as Telegram sent it: it may hold a patient's words, so it lives
    only here, beside the rest of the health data, and is never logged.
    """

    __tablename__ = "dead_letters"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    raw: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(64))
    tries: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class Alert(Base):
    """A finding for staff: one open alert per episode and rule (``open_key`` is 1 while open).

    ``delivery`` is pending until the staff chat accepted the message: never dropped.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("episode_id", "rule_id", "open_key"),
        Index("ix_alerts_delivery_next", "delivery", "next_delivery_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[AlertStatus] = mapped_column(StateType(AlertStatus), index=True)
    open_key: Mapped[int | None]
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivery: Mapped[AlertDelivery] = mapped_column(StateType(AlertDelivery))
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_delivery_at: Mapped[datetime | None]
    needs_edit: Mapped[bool] = mapped_column(default=False)
    staff_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_message_id: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)
    escalation_count: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None]

    episode: Mapped[Episode] = relationship()


class AuditEvent(Base):
    """Who did what and when; details carry ids, never health values or free text."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Digest(Base):
    """One morning digest per local day: inserting the row claims it (no double digest)."""

    __tablename__ = "digests"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    claimed_at: Mapped[datetime]
    claimed_by: Mapped[str] = mapped_column(String(128))
    sent_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(BigInteger)


class StaffMember(Base):
    """A staff member added at run time (on top of STAFF_USER_IDS); removal keeps the row."""

    __tablename__ = "staff_members"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    added_at: Mapped[datetime]
    added_by: Mapped[str] = mapped_column(String(128))
    removed_at: Mapped[datetime | None]


class StaffDialog(Base):
    """A staff member's unfinished multi-step command (guided /enroll, a resolution note).

    Kept in the database, not in memory, so a restart or another process carries on where the
    nurse left off; one open dialog per staff member and chat (a new command replaces it).
    """

    __tablename__ = "staff_dialogs"
    __table_args__ = (UniqueConstraint("chat_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class UnitMessage(Base):
    """A message the unit sent a patient through the bot (``/msg``): what, by whom, delivered?"""

    __tablename__ = "unit_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    sent_by: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)


class BotFact(Base):
    """Something the running bot learnt and one-shot commands need without asking Telegram:
    the bot's @username as getMe returned it at the last start (for enrolment links)."""

    __tablename__ = "bot_facts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime]


class ChatHealth(Base):
    """Whether the bot can post in a team chat (``staff``, ``oncall``), as last seen.

    In the database, not in memory: the process that finds a chat lost tells the other chat
    once, every process then routes alerts around it, and ``/healthz`` and the metric of any
    process report it. ``announced`` is the problem the other chat was last told about (None
    once told it is solved): a notice is owed while it differs from ``problem``.
    """

    __tablename__ = "chat_health"

    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    #: None while the bot can post; else ``removed``, ``restricted``, ``migrated``, ``not_found``.
    problem: Mapped[str | None] = mapped_column(String(16))
    #: The supergroup's id when the group was upgraded (``migrated``).
    new_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    since: Mapped[datetime]
    announced: Mapped[str | None] = mapped_column(String(16))
    checked_at: Mapped[datetime | None]


class SendPace(Base):
    """When the bot's processes may send their next message under one of Telegram's budgets
    (``global``: 30 a second; ``chat:<id>``: a group's 20 a minute), in the database's clock:
    several processes on one PostgreSQL share it (bot/db/queries/pace.py)."""

    __tablename__ = "send_pace"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Seconds since the epoch (the database's clock_timestamp()).
    next_slot: Mapped[float] = mapped_column(Float)
