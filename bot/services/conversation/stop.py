"""The patient ends the follow-up (``/stop``, or a newer consent refused)."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import Answer, CheckIn, EnrolmentToken
from bot.domain.states import CheckInStatus, EpisodeStatus
from bot.services.conversation.turn import Turn


async def stop_episode(turn: Turn, *, reason: str) -> None:
    """Every remaining check-in is cancelled, answers are kept, unused links expire (as a staff
    stop does)."""
    session, episode, now = turn.session, turn.episode, turn.now
    episode.status = EpisodeStatus.STOPPED
    episode.stopped_at = now
    episode.paused_at = None
    episode.awaiting = None
    tokens = await session.scalars(
        select(EnrolmentToken).where(
            EnrolmentToken.episode_id == episode.id, EnrolmentToken.used_at.is_(None)
        )
    )
    for token in tokens:
        token.expires_at = min(token.expires_at, now)
    checkins = await session.scalars(
        select(CheckIn).where(
            CheckIn.episode_id == episode.id,
            CheckIn.status.in_(
                (CheckInStatus.SCHEDULED, CheckInStatus.SENDING, CheckInStatus.AWAITING)
            ),
        )
    )
    for checkin in checkins:
        if checkin.status == CheckInStatus.AWAITING:
            answered = await session.scalar(
                select(Answer.id).where(Answer.checkin_id == checkin.id, Answer.status != "unclear")
            )
            checkin.status = (
                CheckInStatus.PARTIAL if answered is not None else CheckInStatus.CANCELLED
            )
        else:
            checkin.status = CheckInStatus.CANCELLED
        checkin.status_reason = reason
        checkin.closed_at = now
        checkin.next_reminder_at = None
    turn.audit("follow_up_stopped", actor="patient", reason=reason)
