"""A patient who blocks the bot, and one who writes again (which unblocks it).

Silence is clinical data: a blocked bot raises the ``blocked`` rule for staff."""

from __future__ import annotations

from bot.db.queries import episodes
from bot.domain.rules import History, evaluate_blocked
from bot.domain.states import LIVE_STATUSES
from bot.services import alerts, audit
from bot.services.context import ServiceContext
from bot.services.conversation.evaluation import load_history
from bot.services.conversation.turn import Outbox, Turn


def unblock(turn: Turn) -> None:
    """A patient who writes has unblocked the bot: sending may resume (audited)."""
    if turn.episode.blocked_at is not None:
        turn.episode.blocked_at = None
        turn.audit("bot_unblocked", actor="patient")


async def mark_blocked(ctx: ServiceContext, *, chat_id: int) -> None:
    """The patient blocked the bot: stop sending and tell staff (silence is clinical data)."""
    now = ctx.clock.now()
    outbox = Outbox(chat_id)
    async with ctx.sessions.begin() as session:
        found = await episodes.patient_episode(session, chat_id=chat_id)
        if found is None or found[1].status not in LIVE_STATUSES:
            return
        _patient, episode = found
        if episode.blocked_at is not None:
            return
        episode.blocked_at = now
        protocol = await ctx.protocols.protocol_of(session, episode.protocol_version_id)
        history = await load_history(session, episode)
        history = History(
            indication=history.indication,
            baseline=history.baseline,
            observations=history.observations,
            blocked=True,
        )
        findings = evaluate_blocked(protocol, history)
        outbox.alerts.extend(
            await alerts.raise_findings(session, now=now, episode=episode, findings=findings)
        )
        audit.record(session, at=now, actor="system", action="bot_blocked", episode_id=episode.id)
    if outbox.alerts:
        await alerts.deliver_pending(ctx)
