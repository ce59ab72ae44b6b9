"""Free text outside any question: saved for staff, read for red flags, acknowledged.

A red flag read for certain alerts; a doubtful one gets a yes/no question (:mod:`.clarify`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Episode
from bot.domain.parsing import Parsed, scan_red_flags
from bot.domain.protocol import Protocol
from bot.domain.rules import Observation
from bot.domain.schedule import day_number
from bot.domain.states import FOLLOW_UP_OVER, Awaiting
from bot.i18n import t
from bot.services.context import ServiceContext
from bot.services.conversation.clarify import clarifying
from bot.services.conversation.evaluation import evaluate, save_answer
from bot.services.conversation.prompts import clarify_question, resume
from bot.services.conversation.turn import Outbox


async def save_note(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    text: str,
    message_id: int | None,
    now: datetime,
    *,
    kind: str = "note",
    skip_flags: frozenset[str] = frozenset(),
) -> None:
    """A message outside any question: saved for staff, read for red flags, acknowledged."""
    lang = episode.language
    save_answer(session, episode, None, None, kind, text, Parsed(status="ok"), now, message_id)
    found_flags = await scan_free_text(
        session, ctx, outbox, protocol, episode, text, now, skip_flags=skip_flags
    )
    if found_flags:
        return
    if episode.status in FOLLOW_UP_OVER:
        outbox.say(
            t(
                lang,
                "Your follow-up has ended, but your message has been saved and the team will read it. If you are worried, call the unit on {phone}.",
                phone=ctx.unit.unit_phone,
            )
        )
        return
    outbox.say(
        t(
            lang,
            "Thank you, your message has been saved and the team will read it. If you are worried, call the unit on {phone}.",
            phone=ctx.unit.unit_phone,
        )
    )
    await resume(session, ctx, outbox, protocol, episode)


async def scan_free_text(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    text: str,
    now: datetime,
    *,
    skip_flags: frozenset[str] = frozenset(),
) -> bool:
    """Read free text for red flags: certain ones alert, a doubtful one gets a yes/no question."""
    mentions = scan_red_flags(
        text, protocol.red_flags, fever_threshold=protocol.fever_threshold_celsius
    )
    certain = frozenset(m.flag for m in mentions if m.certainty == "certain") - skip_flags
    doubtful = [
        m.flag
        for m in mentions
        if m.certainty == "doubtful" and m.flag not in certain and m.flag not in skip_flags
    ]
    day = day_number(episode.procedure_at, now, episode.time_zone)
    said = False
    if certain:
        save_answer(
            session,
            episode,
            None,
            None,
            "text_flags",
            None,
            Parsed(status="ok"),
            now,
            None,
            flags=certain,
        )
        findings = await evaluate(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            [Observation(checkin_id=None, question_id=None, day=day, value=None, flags=certain)],
            now,
        )
        said = bool(findings)
    if doubtful and not clarifying(episode):
        flag = doubtful[0]
        episode.awaiting = Awaiting.clarify(flag)
        episode.reask_count = 0
        outbox.messages.append(clarify_question(protocol, flag, episode.language))
        said = True
    return said


def flags_in(protocol: Protocol, text: str | None) -> frozenset[str]:
    """Red flags read for certain in a text (those of an edited message's first version)."""
    if not text:
        return frozenset()
    mentions = scan_red_flags(
        text, protocol.red_flags, fever_threshold=protocol.fever_threshold_celsius
    )
    return frozenset(m.flag for m in mentions if m.certainty == "certain")
