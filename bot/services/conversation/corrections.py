"""Edited messages: saved as a correction (``kind="correction"``) of the answer they edited.

The original row is kept, so the record shows both what was first said and what was meant; the
correction is re-read for red flags that were not in the original and evaluated like an answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer, CheckIn, Episode
from bot.domain.parsing import parse_scale
from bot.domain.protocol import Indication, Protocol, Question
from bot.domain.rules import Observation
from bot.domain.schedule import day_number
from bot.domain.states import CheckInStatus
from bot.i18n import t
from bot.services.context import ServiceContext
from bot.services.conversation.answers import parse_typed, update_koos_score
from bot.services.conversation.clarify import clarifying
from bot.services.conversation.consent import gate
from bot.services.conversation.evaluation import evaluate, save_answer
from bot.services.conversation.notes import flags_in, save_note, scan_free_text
from bot.services.conversation.prompts import resume
from bot.services.conversation.turn import Outbox
from bot.services.questions import answer_label


async def correct(
    session: AsyncSession,
    ctx: ServiceContext,
    outbox: Outbox,
    protocol: Protocol,
    episode: Episode,
    text: str,
    message_id: int | None,
    now: datetime,
) -> bool:
    """An edited message saved as a correction of what it edited; False when it is not a
    correction of anything and must be read as a new message."""
    lang = episode.language
    original = None
    if message_id is not None:
        original = await session.scalar(
            select(Answer)
            .where(Answer.episode_id == episode.id, Answer.telegram_message_id == message_id)
            .order_by(Answer.id.desc())
        )
    if original is None:
        # Nothing of ours came from that message (sent before enrolment, or a command):
        # read it as a new message.
        return False
    if await gate(session, ctx, outbox, protocol, episode, now):
        return True
    before = flags_in(protocol, original.raw_text)
    checkin = await session.get(CheckIn, original.checkin_id) if original.checkin_id else None
    question = _question_of(protocol, original.question_id)
    if (
        checkin is not None
        and question is not None
        and checkin.status == CheckInStatus.AWAITING
        and original.status == "unclear"
        and _current_question_id(protocol, episode, checkin) == question.id
    ):
        # The edited message was a not-understood attempt at the question still open.
        return False
    if question is None or checkin is None or question.type == "photo":
        # Not an answer to a protocol question (or a photo's caption): a corrected note.
        if original.question_id == "baseline" and episode.baseline_source == "patient":
            parsed = parse_scale(text, minimum=0, maximum=10)
            save_answer(
                session, episode, None, "baseline", "correction", text, parsed, now, message_id
            )
            if parsed.status == "ok" and parsed.value is not None:
                episode.baseline_pain = parsed.value
                outbox.say(
                    t(
                        lang,
                        "Thank you, I have corrected your answer: {answer}.",
                        answer=f"{parsed.value}/10",
                    )
                )
            await scan_free_text(
                session, ctx, outbox, protocol, episode, text, now, skip_flags=before
            )
            return True
        await save_note(
            session,
            ctx,
            outbox,
            protocol,
            episode,
            text,
            message_id,
            now,
            kind="correction",
            skip_flags=before,
        )
        return True
    parsed = parse_typed(protocol, question, text, lang)
    save_answer(session, episode, checkin, question.id, "correction", text, parsed, now, message_id)
    said = answer_label(question, language=lang, value=parsed.value, option_id=parsed.option_id)
    if parsed.status == "ok":
        day = day_number(episode.procedure_at, now, episode.time_zone)
        observation = Observation(
            checkin_id=checkin.def_id,
            question_id=question.id,
            day=day,
            value=parsed.value,
            flags=parsed.flags,
        )
        if said:
            outbox.say(t(lang, "Thank you, I have corrected your answer: {answer}.", answer=said))
        else:
            outbox.say(t(lang, "Thank you, I have saved your correction for the team."))
        await evaluate(session, ctx, outbox, protocol, episode, [observation], now)
        if question.score == "koos_jr":
            await update_koos_score(session, protocol, episode, checkin, now)
    else:
        outbox.say(t(lang, "Thank you, I have saved your correction for the team."))
    asked = await scan_free_text(
        session, ctx, outbox, protocol, episode, text, now, skip_flags=before | parsed.flags
    )
    if not (asked and clarifying(episode)):
        # The open question again, below the acknowledgement (and any safety advice).
        await resume(session, ctx, outbox, protocol, episode)
    return True


def _question_of(protocol: Protocol, question_id: str | None) -> Question | None:
    if question_id is None:
        return None
    try:
        return protocol.question(question_id)
    except KeyError:
        return None


def _current_question_id(protocol: Protocol, episode: Episode, checkin: CheckIn) -> str | None:
    questions = protocol.questions_for(checkin.def_id, Indication(episode.indication))
    if checkin.question_index < len(questions):
        return questions[checkin.question_index].id
    return None
