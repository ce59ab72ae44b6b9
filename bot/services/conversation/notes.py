"""Free text outside any question: saved for staff, read for red flags, acknowledged.

A red flag read for certain alerts; a doubtful one gets a yes/no question (:mod:`.clarify`);
without one, a question about an expected effect gets the protocol's answer (:mod:`.education`)."""

from __future__ import annotations

from bot.domain.parsing import Parsed, scan_red_flags
from bot.domain.protocol import Protocol
from bot.domain.rules import Observation
from bot.domain.states import FOLLOW_UP_OVER, Awaiting
from bot.i18n import t
from bot.services.conversation.clarify import clarifying
from bot.services.conversation.education import explain_expected
from bot.services.conversation.evaluation import evaluate, save_answer
from bot.services.conversation.prompts import clarify_question, resume
from bot.services.conversation.turn import Turn


async def save_note(
    turn: Turn,
    *,
    text: str,
    message_id: int | None,
    kind: str = "note",
    skip_flags: frozenset[str] = frozenset(),
) -> None:
    """A message outside any question: saved for staff, read for red flags, acknowledged."""
    lang, phone = turn.language, turn.ctx.unit.unit_phone
    save_answer(turn, kind=kind, text=text, parsed=Parsed(status="ok"), message_id=message_id)
    if await scan_free_text(turn, text=text, skip_flags=skip_flags):
        return
    # No red flag in it: a question about an expected effect gets the protocol's answer first.
    explain_expected(turn, text=text)
    if turn.episode.status in FOLLOW_UP_OVER:
        turn.outbox.say(
            t(
                lang,
                "Your follow-up has ended, but your message has been saved and the team will read it. If you are worried, call the unit on {phone}.",
                phone=phone,
            )
        )
        return
    turn.outbox.say(
        t(
            lang,
            "Thank you, your message has been saved and the team will read it. If you are worried, call the unit on {phone}.",
            phone=phone,
        )
    )
    await resume(turn)


async def scan_free_text(
    turn: Turn,
    *,
    text: str,
    skip_flags: frozenset[str] = frozenset(),
    not_asking: frozenset[str] = frozenset(),
) -> bool:
    """Read free text for red flags: certain ones alert, a doubtful one gets a yes/no question.

    ``skip_flags`` are already reported by the answer; ``not_asking`` are not asked about when
    doubtful (the question being asked again covers them). True when the patient was told
    something (safety advice, or the yes/no question)."""
    protocol, episode = turn.protocol, turn.episode
    mentions = scan_red_flags(
        text, protocol.red_flags, fever_threshold=protocol.fever_threshold_celsius
    )
    certain = frozenset(m.flag for m in mentions if m.certainty == "certain") - skip_flags
    doubtful = [
        m.flag
        for m in mentions
        if m.certainty == "doubtful"
        and m.flag not in certain
        and m.flag not in skip_flags | not_asking
    ]
    said = False
    if certain:
        save_answer(turn, kind="text_flags", parsed=Parsed(status="ok"), flags=certain)
        observation = Observation(
            checkin_id=None, question_id=None, day=turn.day, value=None, flags=certain
        )
        said = bool(await evaluate(turn, [observation]))
    if doubtful and not clarifying(episode):
        flag = doubtful[0]
        episode.awaiting = Awaiting.clarify(flag)
        episode.reask_count = 0
        turn.outbox.messages.append(clarify_question(turn, flag))
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
