"""The yes/no question that confirms or rules out one red flag read as doubtful."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Episode
from bot.domain.parsing import Parsed
from bot.domain.protocol import Protocol
from bot.domain.rules import Observation
from bot.domain.schedule import day_number
from bot.domain.states import AwaitingKind
from bot.i18n import t
from bot.services.context import ServiceContext
from bot.services.conversation.evaluation import evaluate
from bot.services.conversation.prompts import clarify_question, resume
from bot.services.conversation.turn import Outbox


def clarifying(episode: Episode) -> bool:
    """True while the patient is asked to confirm or rule out one red flag."""
    return episode.awaiting is not None and episode.awaiting.kind is AwaitingKind.CLARIFY


async def clarified(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    flag: str,
    parsed: Parsed,
    now: datetime,
) -> None:
    """The answer to the yes/no question asked after a doubtful mention of a red flag."""
    lang = episode.language
    day = day_number(episode.procedure_at, now, episode.time_zone)
    if parsed.status != "ok" and episode.reask_count == 0:
        episode.reask_count = 1
        outbox.messages.append(
            clarify_question(protocol, flag, lang, t(lang, "Please answer yes or no:"))
        )
        return
    episode.awaiting = None
    episode.reask_count = 0
    if parsed.status != "ok":
        observation = Observation(
            checkin_id=None, question_id=flag, day=day, value=None, unclear=True
        )
    else:
        flags = frozenset({flag}) if parsed.value == 1 else frozenset()
        observation = Observation(
            checkin_id=None, question_id=flag, day=day, value=parsed.value, flags=flags
        )
    findings = await evaluate(session, ctx, outbox, protocol, episode, [observation], now)
    if not findings:
        outbox.say(t(lang, "Thank you, noted."))
    await resume(session, ctx, outbox, protocol, episode)
