"""The yes/no question that confirms or rules out one red flag read as doubtful."""

from __future__ import annotations

from bot.db.models import Episode
from bot.domain.parsing import Parsed
from bot.domain.rules import Observation
from bot.domain.states import AwaitingKind
from bot.i18n import t
from bot.services.conversation.evaluation import evaluate
from bot.services.conversation.prompts import clarify_question, resume
from bot.services.conversation.turn import Turn


def clarifying(episode: Episode) -> bool:
    """True while the patient is asked to confirm or rule out one red flag."""
    return episode.awaiting is not None and episode.awaiting.kind is AwaitingKind.CLARIFY


async def clarified(turn: Turn, *, flag: str, parsed: Parsed) -> None:
    """The answer to the yes/no question asked after a doubtful mention of a red flag."""
    episode, lang = turn.episode, turn.language
    if parsed.status != "ok" and episode.reask_count == 0:
        episode.reask_count = 1
        turn.outbox.messages.append(
            clarify_question(turn, flag, prefix=t(lang, "Please answer yes or no:"))
        )
        return
    episode.awaiting = None
    episode.reask_count = 0
    if parsed.status != "ok":
        observation = Observation(
            checkin_id=None, question_id=flag, day=turn.day, value=None, unclear=True
        )
    else:
        flags = frozenset({flag}) if parsed.value == 1 else frozenset()
        observation = Observation(
            checkin_id=None, question_id=flag, day=turn.day, value=parsed.value, flags=flags
        )
    findings = await evaluate(turn, [observation])
    if not findings:
        turn.outbox.say(t(lang, "Thank you, noted."))
    await resume(turn)
