"""The dispatcher: sends due check-ins, reminders, closes expired ones. DB rows are the truth.

APScheduler (PTB's JobQueue) only wakes :func:`tick` at the next due time plus a slow safety
tick; nothing is kept in memory, so a restart rebuilds everything from the database.

Claims are atomic: one ``UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]) RETURNING``
moves at most :data:`BATCH` due rows from ``scheduled`` to ``sending``. On PostgreSQL the row
locks let several processes claim disjoint batches; on SQLite the single writer serialises the
claims. A claim of :data:`CLAIM` rows is opened at once (``awaiting``, so a patient who answers
at once finds the check-in) and its sends start; the next claim is made while they are in flight,
as long as at most :data:`BATCH` claimed rows are not yet recorded. Finished sends are recorded
(``sent_at``, message id) in one transaction per group, which makes room for the next claim: no
round waits for its slowest send before the next rows are claimed. All of a tick's transactions
run one after another in the tick's task (SQLite has one writer); only the sends overlap them.

Quiet hours hold for every automatic send to a patient, not only for planned times: a check-in
or a reminder that falls due while the patient's quiet hours are on (the bot was down, retries
ran late) is not sent but waits for their end in the patient's time zone (``retry_at``, or the
next reminder time), without counting as an attempt. It is sent in the morning if its window is
still open then, else it is missed as it would have been had the bot stayed down. Replies to a
patient's own message (safety advice first) never wait: they are not sent from here.

Failures:

* ``RecipientBlocked`` (403): the check-in is cancelled, the episode marked blocked and staff
  alerted (rule ``bot_blocked``); every later check-in of the episode is cancelled when due.
* ``TemporaryFailure`` and other delivery errors: the row goes back to ``scheduled`` with
  ``retry_at`` = now + ``retry_after`` (Telegram's 429) or an exponential backoff
  (:data:`RETRY_BASE` doubling up to :data:`RETRY_CAP`). ``opening_sent`` remembers which
  opening messages were delivered, so a retry sends only the rest: the information message is
  not repeated because the question after it hit a 429.
* A response lost after Telegram applied the request (the fake server's "drop", a read timeout)
  cannot be told apart from a failure: the message is sent again on retry, so each lost
  response can cause one duplicate message, never a lost check-in (at-least-once).

Telegram's limits are the adapter's job (``bot/telegram/ratelimit.py``: PTB's limiter, which
waits out a 429 itself, plus per-private-chat pacing); a 429 that still reaches this module (the
sandbox runs without a limiter) is honoured through ``retry_at``.

A crashed process: its claimed rows (``sending``, or opened but never confirmed) are released
to ``scheduled`` when their holder is known dead — same host, and its process id is gone or now
belongs to a younger process (see :func:`process_identity`) — at the next tick of any process on
that host, and in any case after :data:`STALE_CLAIM`. Only claimed rows not yet recorded can have
been delivered without the database knowing, and there are never more than :data:`BATCH` of
them, so at most :data:`BATCH` check-ins are sent twice after a crash: the bound the crash test
asserts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import CheckIn, Episode, Patient
from bot.db.queries.alerts import next_alert_event
from bot.db.queries.checkins import (
    awaiting_by_episode,
    checkins_by_id,
    claim_due_checkins,
    claim_due_reminders,
    claim_expired_checkins,
    claim_holders,
    claimed_to_open,
    episodes_by_id,
    has_answers,
    missed_in_row,
    next_checkin_event,
    oldest_unsent_due,
    open_checkins,
    release_claims,
    with_episode,
    with_episode_and_patient,
)
from bot.domain.protocol import Indication, Protocol
from bot.domain.rules import History, evaluate_missed
from bot.domain.schedule import next_outside_quiet_hours, reminder_times
from bot.domain.states import CheckInStatus, EpisodeStatus
from bot.i18n import t
from bot.metrics import DISPATCHER_LAG, MESSAGES_FAILED, MESSAGES_SENT
from bot.services import alerts, audit, chat_health, claims, digest, owed
from bot.services.claims import holder_is_dead
from bot.services.context import ServiceContext
from bot.services.conversation import mark_blocked, send_still_owed
from bot.services.ports import DeliveryError, OutgoingMessage, RecipientBlocked
from bot.services.questions import render_question

log = structlog.get_logger(__name__)

#: Most check-ins claimed and not yet recorded at once (so also most sends in flight): the most
#: check-ins a crash can make us send twice.
BATCH = 64
#: Rows per claim: half of BATCH, so one claim is sending while the next is claimed and opened.
CLAIM = BATCH // 2
#: Expired rows closed per transaction.
EXPIRE_BATCH = 500
#: A claim older than this (real time: bot.services.claims) is released whatever its holder
#: (a process on another host died).
STALE_CLAIM = timedelta(minutes=5)
#: First retry delay after a failed send; doubled at each attempt up to RETRY_CAP.
RETRY_BASE = timedelta(seconds=15)
RETRY_CAP = timedelta(minutes=10)
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
    released: int = 0
    #: Messages owed to patients that were still unsent (a crash, a temporary failure).
    owed: int = 0


async def tick(ctx: ServiceContext) -> TickReport:
    """Do everything that is due now."""
    report = TickReport()
    report.released = await _release_stale_claims(ctx)
    report.owed = await send_still_owed(ctx)
    while True:
        closed = await _close_expired(ctx)
        report.missed += closed
        if closed < EXPIRE_BATCH:
            break
    report.sent, report.failed = await _send_due(ctx)
    report.reminders = await _send_reminders(ctx)
    await chat_health.check(ctx)  # before the cards: they go around a chat found lost
    report.alerts_delivered = await alerts.deliver_pending(ctx)
    await alerts.reescalate_due(ctx)
    await digest.send_if_due(ctx)
    await _measure_lag(ctx)
    return report


async def next_wakeup(ctx: ServiceContext) -> datetime | None:
    """The earliest moment something will be due (None when nothing is scheduled).

    A row waiting for a retry counts at its ``retry_at``, not its past ``due_at``: otherwise the
    waker would spin until the retry time.
    """
    async with ctx.sessions() as session:
        candidates = [await next_checkin_event(session), await next_alert_event(session)]
    candidates.append(await digest.next_due(ctx))
    candidates.append(await owed.next_attempt(ctx))
    present = [c for c in candidates if c is not None]
    return min(present) if present else None


async def _release_stale_claims(ctx: ServiceContext) -> int:
    """Give back to ``scheduled`` the claims of dead processes (see the module docstring)."""
    claimed_before = claims.stale_before(ctx.clock, STALE_CLAIM)
    async with ctx.sessions.begin() as session:
        holders = await claim_holders(session)
        dead = [h for h in holders if h != ctx.process_id and holder_is_dead(h)]
        released = await release_claims(session, claimed_before=claimed_before, holders=dead)
    if released:
        log.warning("claims_released", count=released, dead_holders=len(dead))
    return released


async def _claim(ctx: ServiceContext) -> list[int]:
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        return await claim_due_checkins(
            session,
            now=now,
            limit=CLAIM,
            worker=ctx.process_id,
            claimed_at=claims.claim_time(ctx.clock),
        )


@dataclass
class _Prepared:
    checkin_id: int
    chat_id: int
    messages: list[OutgoingMessage]


@dataclass
class _Outcome:
    """How far a check-in's opening went: messages delivered, last message id, the error."""

    delivered: int
    message_id: int | None
    error: DeliveryError | None


async def _send_due(ctx: ServiceContext) -> tuple[int, int]:
    """Claim, open, send and record every due check-in, with up to :data:`BATCH` claimed rows
    unrecorded: claims are made while earlier sends are in flight (no round barrier).

    Returns (sent, failed).
    """
    sending: set[asyncio.Task[tuple[_Prepared, _Outcome]]] = set()
    finished: list[tuple[_Prepared, _Outcome]] = []
    sent = failed = 0
    exhausted = False
    try:
        while True:
            unrecorded = len(sending) + len(finished)
            if not exhausted and unrecorded + CLAIM <= BATCH:
                claimed = await _claim(ctx)
                exhausted = len(claimed) < CLAIM
                if claimed:
                    for item in await _open_claimed(ctx, claimed):
                        sending.add(asyncio.create_task(_send_one(ctx, item)))
                continue
            # Record a claim's worth at once (one transaction), or whatever is left at the end.
            if finished and (len(finished) >= CLAIM or not sending):
                done_sent, done_failed = await _record(ctx, finished)
                sent, failed, finished = sent + done_sent, failed + done_failed, []
                continue
            if not sending:
                return sent, failed
            done, _ = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
            sending -= done
            finished.extend(task.result() for task in done)
    finally:
        for task in sending:  # cancelled tick: its rows stay claimed until released
            task.cancel()


async def _send_one(ctx: ServiceContext, item: _Prepared) -> tuple[_Prepared, _Outcome]:
    """Send what is left of one check-in's opening; stop at the first failure."""
    delivered = 0
    message_id: int | None = None
    for message in item.messages:
        try:
            ref = await ctx.messenger.send(item.chat_id, message)
        except DeliveryError as exc:
            MESSAGES_FAILED.labels(reason=type(exc).__name__).inc()
            log.warning(
                "checkin_send_failed",
                checkin_id=item.checkin_id,
                error=type(exc).__name__,
                retry_after=exc.retry_after,
            )
            return item, _Outcome(delivered, message_id, exc)
        delivered += 1
        message_id = ref.message_id
        MESSAGES_SENT.labels(kind="checkin").inc()
    return item, _Outcome(delivered, message_id, None)


async def _record(
    ctx: ServiceContext, results: Sequence[tuple[_Prepared, _Outcome]]
) -> tuple[int, int]:
    """Record finished sends in one transaction: sent (``sent_at``, message id, next
    reminder), or back to ``scheduled`` with a retry time, or cancelled when blocked."""
    now = ctx.clock.now()
    sent = failed = 0
    blocked_chats: list[int] = []
    async with ctx.sessions.begin() as session:
        by_id = await checkins_by_id(session, ids=[item.checkin_id for item, _ in results])
        episodes = await episodes_by_id(session, ids={c.episode_id for c in by_id.values()})
        for item, outcome in results:
            checkin = by_id[item.checkin_id]
            checkin.opening_sent += outcome.delivered
            if outcome.error is None:
                sent += 1
                checkin.sent_at = now
                checkin.message_id = outcome.message_id
                checkin.retry_at = None
                if checkin.status != CheckInStatus.AWAITING:
                    continue  # closed while in flight (a later check-in of the episode opened)
                episode = episodes[checkin.episode_id]
                protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
                checkin.next_reminder_at = _next_reminder(protocol, checkin, episode, now)
                continue
            failed += 1
            if isinstance(outcome.error, RecipientBlocked):
                checkin.status, checkin.status_reason, checkin.closed_at = (
                    CheckInStatus.CANCELLED,
                    "blocked",
                    now,
                )
                blocked_chats.append(item.chat_id)
            elif checkin.status == CheckInStatus.AWAITING and checkin.question_index == 0:
                checkin.status = CheckInStatus.SCHEDULED
                # Telegram's retry_after and network backoff are real time.
                checkin.retry_at = ctx.clock.after_real(
                    _retry_delay(checkin.attempts, outcome.error)
                )
    for chat_id in blocked_chats:
        await mark_blocked(ctx, chat_id=chat_id)
    if sent or failed:
        log.info("dispatched", sent=sent, failed=failed)
    return sent, failed


async def _open_claimed(ctx: ServiceContext, claimed: list[int]) -> list[_Prepared]:
    """Re-check each claimed row, open it (``awaiting``) and build the messages still to send."""
    now = ctx.clock.now()
    prepared: list[_Prepared] = []
    async with ctx.sessions.begin() as session:
        rows = await claimed_to_open(session, ids=claimed)
        # A check-in still open when the next falls due is closed (partial if it has answers).
        still_open = await awaiting_by_episode(
            session, episode_ids={checkin.episode_id for checkin, _, _ in rows}
        )
        latest_of: set[int] = set()
        for checkin, episode, patient in rows:
            reason = _why_not_send(checkin, episode, patient, now)
            if reason is None and checkin.episode_id in latest_of:
                # Two check-ins of one episode due together (staff moved dates): only the
                # latest is sent; a patient is never asked two check-ins at once.
                reason = "superseded"
            if reason == "window_passed":
                # Expired since the claim: back to _close_expired, which applies the rules.
                checkin.status = CheckInStatus.SCHEDULED
                continue
            if reason is not None:
                checkin.status, checkin.status_reason = CheckInStatus.CANCELLED, reason
                checkin.closed_at = now
                continue
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            morning = next_outside_quiet_hours(now, protocol.quiet_hours, episode.time_zone)
            if morning > now:
                # Late (downtime, retries) and now in the patient's quiet hours: wait for their
                # end, not counted as an attempt. Past its window by then, it is missed.
                checkin.status, checkin.retry_at = CheckInStatus.SCHEDULED, morning
                checkin.attempts -= 1
                continue
            latest_of.add(checkin.episode_id)
            assert patient.chat_id is not None
            for old in still_open.pop(checkin.episode_id, []):
                await _close_unanswered(session, old, now)
            # Open the conversation before sending: a quick patient must find it awaiting.
            checkin.status = CheckInStatus.AWAITING
            checkin.question_index = 0
            checkin.reminders_sent = 0
            messages = opening_messages(protocol, checkin, episode, now=now)
            prepared.append(
                _Prepared(checkin.id, patient.chat_id, messages[checkin.opening_sent :])
            )
    return prepared


def _retry_delay(attempts: int, error: DeliveryError) -> timedelta:
    """Telegram's ``retry_after`` when it gave one, else an exponential backoff."""
    if error.retry_after is not None:
        return timedelta(seconds=error.retry_after)
    backoff: timedelta = RETRY_BASE * 2 ** max(0, min(attempts - 1, 16))
    return min(RETRY_CAP, backoff)


def _why_not_send(
    checkin: CheckIn, episode: Episode, patient: Patient, now: datetime
) -> str | None:
    """Re-check at send time that the check-in is still wanted (stale schedules are a known
    failure of comparable products)."""
    if episode.status != EpisodeStatus.ACTIVE:
        return f"episode_{episode.status}"
    if episode.blocked_at is not None:
        return "blocked"
    if patient.chat_id is None or patient.erased_at is not None:
        return "no_chat"
    if checkin.window_ends_at <= now:
        return "window_passed"
    return None


async def _close_unanswered(
    session: AsyncSession, checkin: CheckIn, now: datetime
) -> CheckInStatus:
    checkin.status = (
        CheckInStatus.PARTIAL
        if await has_answers(session, checkin_id=checkin.id)
        else CheckInStatus.MISSED
    )
    checkin.closed_at = now
    checkin.next_reminder_at = None
    return checkin.status


async def close_open_checkins(
    session: AsyncSession, *, episode_id: int, now: datetime, reason: str
) -> int:
    """Staff paused or stopped a follow-up: close its open check-in and cancel the due ones.

    An open check-in with answers becomes ``partial`` (answers kept); one without, and rows
    claimed but not yet confirmed, become ``cancelled`` with ``reason``: never ``missed``, so
    the pause is not counted as non-response. Returns how many rows were closed.
    """
    closed = 0
    for checkin in await open_checkins(session, episode_id=episode_id):
        await _cancel(session, checkin, now, reason)
        closed += 1
    return closed


async def _cancel(session: AsyncSession, checkin: CheckIn, now: datetime, reason: str) -> None:
    """Close a check-in nobody should answer now: ``partial`` if it has answers, else
    ``cancelled`` with ``reason`` (never ``missed``: it is not the patient's silence)."""
    if await has_answers(session, checkin_id=checkin.id):
        checkin.status = CheckInStatus.PARTIAL
    else:
        checkin.status, checkin.status_reason = CheckInStatus.CANCELLED, reason
    checkin.closed_at = now
    checkin.next_reminder_at = None


def opening_messages(
    protocol: Protocol, checkin: CheckIn, episode: Episode, *, now: datetime
) -> list[OutgoingMessage]:
    """The information message (if any) and the first question of a check-in, greeted for
    the patient's local time ("Bonsoir" on the evening of the procedure)."""
    lang = episode.language
    definition = protocol.checkin(checkin.def_id)
    messages = []
    if definition.message_before:
        messages.append(
            OutgoingMessage(text=protocol.messages[definition.message_before].get(lang))
        )
    questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
    local_time = now.astimezone(ZoneInfo(episode.time_zone)).time()
    greeting = protocol.greeting_at(local_time, lang) or t(
        lang, "Hello! Here is your follow-up check-in."
    )
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
    """Nudge patients who have not answered; each reminder is claimed before it is sent, so
    two processes never send it twice (a crash in between loses a nudge, never a check-in)."""
    now = ctx.clock.now()
    jobs: list[tuple[int, OutgoingMessage]] = []
    async with ctx.sessions.begin() as session:
        # The next reminder time is set below, in the claim's transaction.
        ids = await claim_due_reminders(session, now=now, limit=BATCH)
        for checkin, episode, patient in await with_episode_and_patient(session, ids=ids):
            protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
            morning = next_outside_quiet_hours(now, protocol.quiet_hours, episode.time_zone)
            if morning > now:
                # Overdue after a downtime and now in quiet hours: not sent, not counted; it
                # waits for their end if the check-in can still be answered then.
                checkin.reminders_sent -= 1
                checkin.next_reminder_at = morning if morning < checkin.window_ends_at else None
                continue
            checkin.next_reminder_at = _next_reminder(protocol, checkin, episode, now)
            questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
            if (
                patient.chat_id is None
                or episode.status != EpisodeStatus.ACTIVE
                or episode.awaiting
            ):
                continue
            if episode.blocked_at is not None or checkin.question_index >= len(questions):
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
    """Check-ins whose window passed become missed (or partial); missed ones feed the rules.

    Rows of a follow-up that is paused, stopped or blocked are ``cancelled`` instead: nobody
    asked the patient, so it is not non-response and raises no alert.
    """
    now = ctx.clock.now()
    closed = 0
    touched_alerts = False
    async with ctx.sessions.begin() as session:
        ids = await claim_expired_checkins(session, now=now, limit=EXPIRE_BATCH)
        expired = await with_episode(session, ids=ids)
        missed_episodes: set[int] = set()
        for checkin, episode in expired:
            closed += 1
            if episode.status != EpisodeStatus.ACTIVE or episode.blocked_at is not None:
                reason = "blocked" if episode.blocked_at else f"episode_{episode.status}"
                await _cancel(session, checkin, now, reason)
                continue
            if await _close_unanswered(session, checkin, now) == CheckInStatus.MISSED:
                missed_episodes.add(checkin.episode_id)
        for episode_id in missed_episodes:
            missed_episode = await session.get(Episode, episode_id)
            assert missed_episode is not None
            protocol = await ctx.protocols.protocol_of(session, missed_episode.protocol_version_id)
            in_row = await missed_in_row(session, episode_id=episode_id)
            findings = evaluate_missed(
                protocol,
                History(
                    indication=Indication(missed_episode.indication),
                    baseline=missed_episode.baseline_pain,
                    observations=(),
                    missed_in_row=in_row,
                ),
            )
            if findings:
                await alerts.raise_findings(
                    session, now=now, episode=missed_episode, findings=findings
                )
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


async def _measure_lag(ctx: ServiceContext) -> None:
    async with ctx.sessions() as session:
        oldest = await oldest_unsent_due(session, now=ctx.clock.now())
    DISPATCHER_LAG.set((ctx.clock.now() - oldest).total_seconds() if oldest else 0.0)
