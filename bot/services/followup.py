"""Staff control of a follow-up: pause, resume, stop, move the procedure date, check in now.

Used by ``python -m bot followup ...`` and by the staff chat commands. Each function is
keyword-only, finds the patient's latest follow-up by the unit's label, records an audit event
with the caller's ``actor`` in the same transaction as the change, and raises
:class:`~bot.errors.NotFoundError` for an unknown label or :class:`~bot.errors.UsageError` for a
change the follow-up's state does not allow. Messages are in the staff language (French) and say
what to do instead, because a nurse reads them between two tasks.

What each change means for the patient:

* **pause** — nothing is sent until resumed. The open check-in is closed (``partial`` if it has
  answers, else ``cancelled``) and check-ins that fall due during the pause are cancelled, never
  ``missed``: a pause raises no non-response alert. The patient is not told (staff usually
  pause after talking to them, e.g. a hospital stay).
* **resume** — the follow-up continues with the next check-in still in the future; those whose
  time passed during the pause stay cancelled (no burst of stale questions).
* **stop** — every remaining check-in is cancelled. The patient is told nothing unless the caller
  passes ``notify_patient=True``: a stop may follow a death, a transfer or a complication, so
  staff decide whether and how the patient hears about it. The reason is kept on the episode
  (free text stays out of the audit trail and logs).
* **move_procedure** — the procedure date is corrected; only check-ins still scheduled in the
  future are planned again from the new date (same local-time rules as at enrolment). Answered,
  missed, open or past ones are untouched.
* **checkin_now** — the next scheduled check-in becomes due now (the dispatcher sends it at its
  next wake-up: at once in the bot, within a safety tick when asked from the command line).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Episode, Patient
from bot.db.queries.checkins import (
    next_scheduled,
    open_checkins,
    replannable_checkins,
    scheduled_checkins,
)
from bot.db.queries.patients import latest_episode, patient_by_label, unused_tokens
from bot.domain.protocol import Indication
from bot.domain.schedule import plan_checkins
from bot.domain.states import LIVE_STATUSES, CheckInStatus, EpisodeStatus
from bot.errors import NotFoundError, UsageError
from bot.i18n import format_local, t
from bot.services import audit
from bot.services.context import ServiceContext
from bot.services.dispatch import close_open_checkins
from bot.services.ports import DeliveryError, OutgoingMessage
from bot.services.retry import retry_on_deadlock

log = structlog.get_logger(__name__)


@retry_on_deadlock
async def pause(ctx: ServiceContext, *, label: str, actor: str) -> None:
    """Stop sending check-ins until :func:`resume`; nothing counts as missed meanwhile."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        episode = await _episode(session, label, language=ctx.unit.staff_language)
        if episode.status == EpisodeStatus.PAUSED:
            assert episode.paused_at is not None
            raise UsageError(
                t(
                    ctx.unit.staff_language,
                    "The follow-up of {label} is already paused since {when}. To restart it, use resume.",
                    label=label,
                    when=format_local(
                        episode.paused_at, ctx.unit.staff_language, episode.time_zone
                    ),
                )
            )
        _require_running(episode, label, language=ctx.unit.staff_language)
        episode.status = EpisodeStatus.PAUSED
        episode.paused_at = now
        closed = await close_open_checkins(
            session, episode_id=episode.id, now=now, reason="episode_paused"
        )
        audit.record(
            session,
            at=now,
            actor=actor,
            action="follow_up_paused",
            episode_id=episode.id,
            closed_checkins=closed,
        )
        episode_id = episode.id
    log.info("follow_up_paused", episode_id=episode_id)


@retry_on_deadlock
async def resume(ctx: ServiceContext, *, label: str, actor: str) -> None:
    """Restart a paused follow-up at its next future check-in."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        episode = await _episode(session, label, language=ctx.unit.staff_language)
        if episode.status != EpisodeStatus.PAUSED:
            if episode.status == EpisodeStatus.ACTIVE:
                raise UsageError(
                    t(
                        ctx.unit.staff_language,
                        "The follow-up of {label} is not paused: it is running.",
                        label=label,
                    )
                )
            raise UsageError(_not_running(episode, label, language=ctx.unit.staff_language))
        skipped = 0
        for checkin in await scheduled_checkins(session, episode_id=episode.id, due_by=now):
            checkin.status, checkin.status_reason, checkin.closed_at = (
                CheckInStatus.CANCELLED,
                "episode_paused",
                now,
            )
            skipped += 1
        episode.status = EpisodeStatus.ACTIVE
        episode.paused_at = None
        audit.record(
            session,
            at=now,
            actor=actor,
            action="follow_up_resumed",
            episode_id=episode.id,
            skipped_checkins=skipped,
        )
        episode_id = episode.id
    ctx.on_schedule_changed()
    log.info("follow_up_resumed", episode_id=episode_id)


@retry_on_deadlock
async def stop(
    ctx: ServiceContext,
    *,
    label: str,
    actor: str,
    reason: str | None = None,
    notify_patient: bool = False,
) -> None:
    """End a follow-up for good: every remaining check-in is cancelled, answers are kept.

    The patient is told only when ``notify_patient`` is true (see the module docstring); a
    failure to tell them is logged and audited, the stop itself stands.
    """
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        episode = await _episode(session, label, language=ctx.unit.staff_language)
        if episode.status not in LIVE_STATUSES:
            raise UsageError(_not_running(episode, label, language=ctx.unit.staff_language))
        previous = episode.status
        episode.status = EpisodeStatus.STOPPED
        episode.stopped_at = now
        episode.stop_reason = reason.strip() if reason and reason.strip() else None
        episode.awaiting = None
        episode.paused_at = None
        closed = await close_open_checkins(
            session, episode_id=episode.id, now=now, reason="episode_stopped"
        )
        for checkin in await scheduled_checkins(session, episode_id=episode.id):
            checkin.status, checkin.status_reason, checkin.closed_at = (
                CheckInStatus.CANCELLED,
                "episode_stopped",
                now,
            )
            closed += 1
        for token in await unused_tokens(session, episode_id=episode.id):
            token.expires_at = min(token.expires_at, now)
        patient = await session.get(Patient, episode.patient_id)
        assert patient is not None
        chat_id = patient.chat_id if notify_patient and previous != EpisodeStatus.INVITED else None
        audit.record(
            session,
            at=now,
            actor=actor,
            action="follow_up_stopped",
            episode_id=episode.id,
            reason="staff",
            cancelled_checkins=closed,
            with_reason=episode.stop_reason is not None,
            patient_told=chat_id is not None,
        )
        episode_id, language = episode.id, episode.language
    log.info("follow_up_stopped", episode_id=episode_id)
    if chat_id is not None:
        await _tell_patient_stopped(ctx, episode_id=episode_id, chat_id=chat_id, lang=language)


@retry_on_deadlock
async def move_procedure(
    ctx: ServiceContext, *, label: str, procedure_at: datetime, actor: str
) -> int:
    """Correct the procedure date; returns how many future check-ins got a new time.

    A check-in whose new time is already past is cancelled (reason ``procedure_moved``) rather
    than sent late; one that now falls in quiet hours is cancelled as at enrolment.
    """
    if procedure_at.tzinfo is None:
        raise UsageError("procedure_at must be an aware datetime (with a time zone)")
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        episode = await _episode(session, label, language=ctx.unit.staff_language)
        if episode.status not in LIVE_STATUSES:
            raise UsageError(_not_running(episode, label, language=ctx.unit.staff_language))
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
        plan = {
            item.checkin_id: item
            for item in plan_checkins(
                protocol,
                procedure_at=procedure_at,
                time_zone=episode.time_zone,
                indication=Indication(episode.indication),
            )
        }
        moved = cancelled = 0
        for checkin in await replannable_checkins(session, episode_id=episode.id, after=now):
            item = plan.get(checkin.def_id)
            if item is None:
                continue
            if item.due_at <= now:
                checkin.status, checkin.status_reason, checkin.closed_at = (
                    CheckInStatus.CANCELLED,
                    "procedure_moved",
                    now,
                )
                cancelled += 1
                continue
            if item.due_at != checkin.due_at or item.window_ends_at != checkin.window_ends_at:
                moved += 1
            checkin.due_at, checkin.window_ends_at = item.due_at, item.window_ends_at
            checkin.status, checkin.status_reason = item.status, item.reason
            checkin.retry_at = None
        old_procedure = episode.procedure_at
        episode.procedure_at = procedure_at
        audit.record(
            session,
            at=now,
            actor=actor,
            action="procedure_moved",
            episode_id=episode.id,
            moved_checkins=moved,
            cancelled_checkins=cancelled,
            shift_minutes=int((procedure_at - old_procedure).total_seconds() // 60),
        )
    ctx.on_schedule_changed()
    return moved


@retry_on_deadlock
async def checkin_now(ctx: ServiceContext, *, label: str, actor: str) -> bool:
    """Make the next scheduled check-in due now; False when none is left.

    Refused while another check-in is open (the patient can answer it now), while paused, and in
    the patient's quiet hours (never wake a patient; alerts and safety advice do not go through
    here).
    """
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        episode = await _episode(session, label, language=ctx.unit.staff_language)
        if episode.status == EpisodeStatus.PAUSED:
            raise UsageError(
                t(
                    ctx.unit.staff_language,
                    "The follow-up of {label} is paused: resume it before sending a check-in.",
                    label=label,
                )
            )
        _require_running(episode, label, language=ctx.unit.staff_language)
        if episode.blocked_at is not None:
            raise UsageError(
                t(
                    ctx.unit.staff_language,
                    "{label} has blocked the bot: no message can reach them. Call the patient.",
                    label=label,
                )
            )
        already_open = await open_checkins(session, episode_id=episode.id)
        if already_open:
            raise UsageError(
                t(
                    ctx.unit.staff_language,
                    "{label} already has a check-in open ({checkin}): the patient can answer it now.",
                    label=label,
                    checkin=already_open[0].def_id,
                )
            )
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
        local = now.astimezone(ZoneInfo(episode.time_zone))
        if protocol.quiet_hours.contains(local.time()):
            raise UsageError(
                t(
                    ctx.unit.staff_language,
                    "It is {time} for {label} (quiet hours {start}-{end}): try again after {end}.",
                    time=local.strftime("%H:%M"),
                    label=label,
                    start=protocol.quiet_hours.start,
                    end=protocol.quiet_hours.end,
                )
            )
        upcoming = await next_scheduled(session, episode_id=episode.id, limit=2)
        if not upcoming:
            return False
        checkin = upcoming[0]
        window = checkin.window_ends_at - checkin.due_at
        window_ends_at = max(checkin.window_ends_at, now + window)
        if len(upcoming) > 1:
            # Never open past the next check-in: one open check-in at a time.
            window_ends_at = min(window_ends_at, max(upcoming[1].due_at, now + window / 4))
        checkin.due_at = now
        checkin.window_ends_at = window_ends_at
        checkin.retry_at = None
        audit.record(
            session,
            at=now,
            actor=actor,
            action="checkin_sent_now",
            episode_id=episode.id,
            checkin=checkin.def_id,
        )
    ctx.on_schedule_changed()
    return True


async def time_zone_of(ctx: ServiceContext, *, label: str) -> str:
    """The time zone of the patient's follow-up (dates typed by staff are read in it)."""
    async with ctx.sessions() as session:
        return (await _episode(session, label, language=ctx.unit.staff_language)).time_zone


async def _episode(session: AsyncSession, label: str, *, language: str) -> Episode:
    """The patient's latest follow-up, locked for the change (PostgreSQL)."""
    patient = await patient_by_label(session, label=label)
    if patient is None or patient.erased_at is not None:
        raise NotFoundError(
            t(
                language,
                "No patient with the label {label}: check the label (the unit's own id, e.g. P-001).",
                label=label,
            )
        )
    episode = await latest_episode(session, patient_id=patient.id, for_update=True)
    if episode is None:
        raise NotFoundError(
            t(language, "{label} has no follow-up: enrol the patient first.", label=label)
        )
    return episode


def _require_running(episode: Episode, label: str, *, language: str) -> None:
    """Pause and check-in-now need a follow-up that the patient has started."""
    if episode.status != EpisodeStatus.ACTIVE:
        raise UsageError(_not_running(episode, label, language=language))


def _not_running(episode: Episode, label: str, *, language: str) -> str:
    """Why a follow-up that is not running cannot be changed, and what to do instead."""
    if episode.status in (EpisodeStatus.INVITED, EpisodeStatus.CONSENT):
        return t(
            language,
            "{label} has not started the follow-up yet (link not opened or consent pending): nothing to do until then.",
            label=label,
        )
    if episode.status == EpisodeStatus.STOPPED:
        return t(
            language,
            "The follow-up of {label} is stopped: it cannot be changed. To follow the patient again, enrol them again.",
            label=label,
        )
    if episode.status == EpisodeStatus.COMPLETED:
        return t(
            language,
            "The follow-up of {label} is completed: it cannot be changed. To follow the patient again, enrol them again.",
            label=label,
        )
    return t(
        language,
        "The patient {label} declined the follow-up: it cannot be changed. To follow the patient again, enrol them again.",
        label=label,
    )


async def _tell_patient_stopped(
    ctx: ServiceContext, *, episode_id: int, chat_id: int, lang: str
) -> None:
    text = t(
        lang,
        "The unit has ended your follow-up by this assistant: you will not receive any more questions. If you have any concern, call the unit on {phone}.",
        phone=ctx.unit.unit_phone,
    )
    try:
        await ctx.messenger.send(chat_id, OutgoingMessage(text=text))
    except DeliveryError as exc:
        log.warning("stop_notice_failed", episode_id=episode_id, error=type(exc).__name__)
        async with ctx.sessions.begin() as session:
            audit.record(
                session,
                at=ctx.clock.now(),
                actor="system",
                action="stop_notice_failed",
                episode_id=episode_id,
            )
