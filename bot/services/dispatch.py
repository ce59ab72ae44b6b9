"""The dispatcher: sends due check-ins, reminders, closes expired ones. DB rows are the truth.

APScheduler (PTB's JobQueue) only wakes :func:`tick` at the next due time plus a slow safety
tick; nothing is kept in memory, so a restart rebuilds everything from the database.

Claims are atomic: one ``UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]) RETURNING``
moves due rows from ``scheduled`` to ``sending``. On PostgreSQL the row locks let several
processes claim disjoint batches; on SQLite the single writer serialises the claims. A check-in is
opened (``awaiting``) before its first message is sent, so a patient who answers at once finds it;
``sent_at`` records the confirmed send. A row claimed or opened but never confirmed by a process
that died is released after :data:`STALE_CLAIM` and sent again (at most the in-flight batch can be
sent twice: the bound of the crash tests).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer, CheckIn, Episode, Patient
from bot.domain.protocol import Indication, Protocol
from bot.domain.rules import History, evaluate_missed
from bot.domain.schedule import reminder_times
from bot.i18n import t
from bot.metrics import DISPATCHER_LAG, MESSAGES_FAILED, MESSAGES_SENT
from bot.services import alerts, audit, digest
from bot.services.context import ServiceContext
from bot.services.conversation import mark_blocked
from bot.services.ports import DeliveryError, OutgoingMessage, RecipientBlocked
from bot.services.questions import render_question

log = structlog.get_logger(__name__)

BATCH = 500
CONCURRENCY = 64
STALE_CLAIM = timedelta(minutes=5)
RETRY_DELAY = timedelta(seconds=30)
#: How often the safety tick runs even when nothing is due (catches rows added by other processes).
SAFETY_TICK = timedelta(seconds=60)


@dataclass
class TickReport:
    """What one tick did (for logs, tests and benchmarks)."""

    sent: int = 0
    failed: int = 0
    missed: int = 0
    reminders: int = 0
    alerts_delivered: int = 0


async def tick(ctx: ServiceContext) -> TickReport:
    """Do everything that is due now (one tick at a time per process)."""
    async with ctx.tick_lock:
        return await _tick(ctx)


async def _tick(ctx: ServiceContext) -> TickReport:
    report = TickReport()
    await _release_stale_claims(ctx)
    report.missed = await _close_expired(ctx)
    while True:
        claimed = await _claim(ctx)
        if not claimed:
            break
        sent, failed = await _send_claimed(ctx, claimed)
        report.sent += sent
        report.failed += failed
        if len(claimed) < BATCH:
            break
    report.reminders = await _send_reminders(ctx)
    report.alerts_delivered = await alerts.deliver_pending(ctx)
    await alerts.reescalate_due(ctx)
    await digest.send_if_due(ctx)
    await _measure_lag(ctx)
    return report


async def next_wakeup(ctx: ServiceContext) -> datetime | None:
    """The earliest moment something will be due (None when nothing is scheduled)."""
    async with ctx.sessions() as session:
        candidates = [
            await session.scalar(
                select(func.min(CheckIn.due_at)).where(CheckIn.status == "scheduled")
            ),
            await session.scalar(
                select(func.min(CheckIn.next_reminder_at)).where(CheckIn.status == "awaiting")
            ),
            await session.scalar(
                select(func.min(CheckIn.window_ends_at)).where(CheckIn.status == "awaiting")
            ),
            await alerts.next_due(session),
        ]
    candidates.append(await digest.next_due(ctx))
    present = [c for c in candidates if c is not None]
    return min(present) if present else None


def _postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def _release_stale_claims(ctx: ServiceContext) -> None:
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(CheckIn)
            .where(
                or_(
                    CheckIn.status == "sending",
                    (CheckIn.status == "awaiting")
                    & CheckIn.sent_at.is_(None)
                    & (CheckIn.question_index == 0)
                    & (CheckIn.reask_count == 0),
                ),
                CheckIn.claimed_at < now - STALE_CLAIM,
            )
            .values(status="scheduled", claimed_by=None)
            .execution_options(synchronize_session=False)
        )


async def _claim(ctx: ServiceContext) -> list[int]:
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        due = (
            select(CheckIn.id)
            .where(
                CheckIn.status == "scheduled",
                CheckIn.due_at <= now,
                or_(CheckIn.claimed_at.is_(None), CheckIn.claimed_at <= now - RETRY_DELAY),
            )
            .order_by(CheckIn.due_at)
            .limit(BATCH)
        )
        if _postgres(session):
            due = due.with_for_update(skip_locked=True)
        result = await session.execute(
            update(CheckIn)
            .where(CheckIn.id.in_(due.scalar_subquery()))
            .values(
                status="sending",
                claimed_at=now,
                claimed_by=ctx.process_id,
                attempts=CheckIn.attempts + 1,
            )
            .returning(CheckIn.id)
            .execution_options(synchronize_session=False)
        )
        return [row[0] for row in result]


@dataclass
class _Prepared:
    checkin_id: int
    chat_id: int
    messages: list[OutgoingMessage]


async def _send_claimed(ctx: ServiceContext, claimed: list[int]) -> tuple[int, int]:
    """Prepare every claimed check-in in one transaction, send concurrently, record in one."""
    now = ctx.clock.now()
    prepared: list[_Prepared] = []
    async with ctx.sessions.begin() as session:
        rows = await session.execute(
            select(CheckIn, Episode, Patient)
            .join(Episode, CheckIn.episode_id == Episode.id)
            .join(Patient, Episode.patient_id == Patient.id)
            .where(CheckIn.id.in_(claimed))
        )
        for checkin, episode, patient in rows:
            reason = _why_not_send(checkin, episode, patient, now)
            if reason is not None:
                checkin.status = "missed" if reason == "window_passed" else "cancelled"
                checkin.status_reason = reason
                checkin.closed_at = now
                continue
            assert patient.chat_id is not None
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            await _close_previous(session, checkin, now)
            # Open the conversation before sending: a quick patient must find it awaiting.
            checkin.status = "awaiting"
            checkin.question_index = 0
            checkin.reminders_sent = 0
            prepared.append(
                _Prepared(checkin.id, patient.chat_id, opening_messages(protocol, checkin, episode))
            )
    results = await _send_all(ctx, prepared)
    sent = failed = 0
    blocked_chats: list[int] = []
    async with ctx.sessions.begin() as session:
        by_id = {
            c.id: c
            for c in await session.scalars(
                select(CheckIn).where(CheckIn.id.in_([p.checkin_id for p in prepared]))
            )
        }
        episodes = {
            e.id: e
            for e in await session.scalars(
                select(Episode).where(Episode.id.in_({c.episode_id for c in by_id.values()}))
            )
        }
        for item, outcome in zip(prepared, results, strict=True):
            checkin = by_id[item.checkin_id]
            if isinstance(outcome, int):
                sent += 1
                checkin.sent_at = now
                checkin.message_id = outcome
                episode = episodes[checkin.episode_id]
                protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
                checkin.next_reminder_at = _next_reminder(protocol, checkin, episode, now)
                continue
            failed += 1
            if isinstance(outcome, RecipientBlocked):
                checkin.status, checkin.status_reason, checkin.closed_at = (
                    "cancelled",
                    "blocked",
                    now,
                )
                blocked_chats.append(item.chat_id)
            elif checkin.status == "awaiting" and checkin.question_index == 0:
                checkin.status = "scheduled"
                checkin.claimed_at = now
    for chat_id in blocked_chats:
        await mark_blocked(ctx, chat_id=chat_id)
    if sent or failed:
        log.info("dispatched", sent=sent, failed=failed)
    return sent, failed


def _why_not_send(
    checkin: CheckIn, episode: Episode, patient: Patient, now: datetime
) -> str | None:
    """Re-check at send time that the check-in is still wanted (stale schedules are a known
    failure of comparable products)."""
    if episode.status != "active":
        return f"episode_{episode.status}"
    if episode.blocked_at is not None:
        return "blocked"
    if patient.chat_id is None or patient.erased_at is not None:
        return "no_chat"
    if checkin.window_ends_at <= now:
        return "window_passed"
    return None


async def _close_previous(session: AsyncSession, checkin: CheckIn, now: datetime) -> None:
    """A check-in still open when the next falls due is closed: partial if it has answers."""
    previous = await session.scalars(
        select(CheckIn).where(
            CheckIn.episode_id == checkin.episode_id,
            CheckIn.status == "awaiting",
            CheckIn.id != checkin.id,
        )
    )
    for old in previous:
        await _close_unanswered(session, old, now)


async def _close_unanswered(session: AsyncSession, checkin: CheckIn, now: datetime) -> str:
    answered = await session.scalar(
        select(func.count(Answer.id)).where(
            Answer.checkin_id == checkin.id, Answer.status != "unclear"
        )
    )
    checkin.status = "partial" if answered else "missed"
    checkin.closed_at = now
    checkin.next_reminder_at = None
    return checkin.status


def opening_messages(
    protocol: Protocol, checkin: CheckIn, episode: Episode
) -> list[OutgoingMessage]:
    """The information message (if any) and the first question of a check-in."""
    lang = episode.language
    definition = protocol.checkin(checkin.def_id)
    messages = []
    if definition.message_before:
        messages.append(
            OutgoingMessage(text=protocol.messages[definition.message_before].get(lang))
        )
    questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
    greeting = t(lang, "Hello! Here is your follow-up check-in.")
    messages.append(
        render_question(
            protocol,
            questions[0],
            language=lang,
            checkin_id=checkin.id,
            index=0,
            prefix_text=greeting,
        )
    )
    return messages


async def _send_all(ctx: ServiceContext, prepared: list[_Prepared]) -> list[int | DeliveryError]:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def send_one(item: _Prepared) -> int | DeliveryError:
        async with semaphore:
            message_id = 0
            try:
                for message in item.messages:
                    ref = await ctx.messenger.send(item.chat_id, message)
                    message_id = ref.message_id
                    MESSAGES_SENT.labels(kind="checkin").inc()
            except DeliveryError as exc:
                MESSAGES_FAILED.labels(reason=type(exc).__name__).inc()
                return exc
            return message_id

    return list(await asyncio.gather(*(send_one(item) for item in prepared)))


def _next_reminder(
    protocol: Protocol, checkin: CheckIn, episode: Episode, now: datetime
) -> datetime | None:
    times = reminder_times(
        due_at=checkin.due_at,
        window_ends_at=checkin.window_ends_at,
        reminders=protocol.reminders,
        quiet_hours=protocol.quiet_hours,
        time_zone=episode.time_zone,
    )
    remaining = times[checkin.reminders_sent :]
    upcoming = [moment for moment in remaining if moment > now]
    return upcoming[0] if upcoming else None


async def _send_reminders(ctx: ServiceContext) -> int:
    now = ctx.clock.now()
    jobs: list[tuple[int, OutgoingMessage]] = []
    async with ctx.sessions.begin() as session:
        query = (
            select(CheckIn, Episode, Patient)
            .join(Episode, CheckIn.episode_id == Episode.id)
            .join(Patient, Episode.patient_id == Patient.id)
            .where(CheckIn.status == "awaiting", CheckIn.next_reminder_at <= now)
            .limit(BATCH)
        )
        if _postgres(session):
            query = query.with_for_update(skip_locked=True, of=CheckIn)
        for checkin, episode, patient in (await session.execute(query)).all():
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            checkin.reminders_sent += 1
            checkin.next_reminder_at = _next_reminder(protocol, checkin, episode, now)
            questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
            if patient.chat_id is None or episode.status != "active" or episode.awaiting:
                continue
            if checkin.question_index >= len(questions):
                continue
            reminder = t(episode.language, "A gentle reminder: your check-in is waiting for you.")
            jobs.append(
                (
                    patient.chat_id,
                    render_question(
                        protocol,
                        questions[checkin.question_index],
                        language=episode.language,
                        checkin_id=checkin.id,
                        index=checkin.question_index,
                        selection=checkin.selection,
                        prefix_text=reminder,
                    ),
                )
            )
    sent = 0
    for chat_id, message in jobs:
        try:
            await ctx.messenger.send(chat_id, message)
            MESSAGES_SENT.labels(kind="reminder").inc()
            sent += 1
        except RecipientBlocked:
            await mark_blocked(ctx, chat_id=chat_id)
        except DeliveryError as exc:
            MESSAGES_FAILED.labels(reason=type(exc).__name__).inc()
    return sent


async def _close_expired(ctx: ServiceContext) -> int:
    """Check-ins whose window passed become missed (or partial); missed ones feed the rules."""
    now = ctx.clock.now()
    closed = 0
    touched_alerts = False
    async with ctx.sessions.begin() as session:
        query = (
            select(CheckIn)
            .where(CheckIn.status.in_(("awaiting", "scheduled")), CheckIn.window_ends_at <= now)
            .limit(BATCH)
        )
        if _postgres(session):
            query = query.with_for_update(skip_locked=True)
        expired = list(await session.scalars(query))
        missed_episodes: set[int] = set()
        for checkin in expired:
            status = await _close_unanswered(session, checkin, now)
            closed += 1
            if status == "missed":
                missed_episodes.add(checkin.episode_id)
        for episode_id in missed_episodes:
            episode = await session.get(Episode, episode_id)
            assert episode is not None
            if episode.status != "active":
                continue
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            in_row = await _missed_in_row(session, episode_id)
            findings = evaluate_missed(
                protocol,
                History(
                    indication=Indication(episode.indication),
                    baseline=episode.baseline_pain,
                    observations=(),
                    missed_in_row=in_row,
                ),
            )
            if findings:
                await alerts.raise_findings(session, now=now, episode=episode, findings=findings)
                touched_alerts = True
            audit.record(
                session,
                at=now,
                actor="system",
                action="checkin_missed",
                episode_id=episode_id,
                in_row=in_row,
            )
    if touched_alerts:
        await alerts.deliver_pending(ctx)
    return closed


async def _missed_in_row(session: AsyncSession, episode_id: int) -> int:
    statuses = await session.scalars(
        select(CheckIn.status)
        .where(
            CheckIn.episode_id == episode_id, CheckIn.status.in_(("answered", "partial", "missed"))
        )
        .order_by(CheckIn.due_at.desc())
    )
    count = 0
    for status in statuses:
        if status != "missed":
            break
        count += 1
    return count


async def _measure_lag(ctx: ServiceContext) -> None:
    async with ctx.sessions() as session:
        oldest = await session.scalar(
            select(func.min(CheckIn.due_at)).where(
                CheckIn.status.in_(("scheduled", "sending")), CheckIn.due_at <= ctx.clock.now()
            )
        )
    DISPATCHER_LAG.set((ctx.clock.now() - oldest).total_seconds() if oldest else 0.0)


async def send_now(ctx: ServiceContext, *, episode_id: int) -> bool:
    """Staff: make the next scheduled check-in due now. False when none is left."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        checkin = await session.scalar(
            select(CheckIn)
            .where(CheckIn.episode_id == episode_id, CheckIn.status == "scheduled")
            .order_by(CheckIn.due_at)
        )
        if checkin is None:
            return False
        length = checkin.window_ends_at - checkin.due_at
        checkin.due_at = now
        checkin.window_ends_at = max(checkin.window_ends_at, now + length)
        audit.record(
            session, at=now, actor="staff", action="checkin_sent_now", episode_id=episode_id
        )
    ctx.on_schedule_changed()
    return True
