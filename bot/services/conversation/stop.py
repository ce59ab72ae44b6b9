"""The patient ends the follow-up (``/stop``, or a newer consent refused)."""

from __future__ import annotations

from bot.db.queries import answers, episodes
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
    for link in await episodes.unused_links(session, episode_id=episode.id):
        link.expires_at = min(link.expires_at, now)
    for checkin in await episodes.unfinished_checkins(session, episode_id=episode.id):
        if checkin.status == CheckInStatus.AWAITING:
            answered = await answers.has_understood_answer(session, checkin_id=checkin.id)
            checkin.status = CheckInStatus.PARTIAL if answered else CheckInStatus.CANCELLED
        else:
            checkin.status = CheckInStatus.CANCELLED
        checkin.status_reason = reason
        checkin.closed_at = now
        checkin.next_reminder_at = None
    turn.audit("follow_up_stopped", actor="patient", reason=reason)
