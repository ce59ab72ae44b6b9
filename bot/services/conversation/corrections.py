"""Edited messages: saved as a correction (``kind="correction"``) of the answer they edited.

The original row is kept, so the record shows both what was first said and what was meant; the
correction is re-read for red flags that were not in the original and evaluated like an answer."""

from __future__ import annotations

from bot.db.models import CheckIn
from bot.db.queries import answers
from bot.domain.parsing import parse_scale
from bot.domain.protocol import Protocol, Question
from bot.domain.rules import Observation
from bot.domain.states import CheckInStatus
from bot.i18n import t
from bot.services.conversation.answers import parse_typed
from bot.services.conversation.clarify import clarifying
from bot.services.conversation.consent import gate
from bot.services.conversation.evaluation import evaluate, save_answer
from bot.services.conversation.notes import flags_in, save_note, scan_free_text
from bot.services.conversation.prompts import resume
from bot.services.conversation.scores import update_score
from bot.services.conversation.turn import Turn
from bot.services.questions import answer_label


async def correct(turn: Turn, *, text: str, message_id: int | None) -> bool:
    """An edited message saved as a correction of what it edited; False when it is not a
    correction of anything and must be read as a new message."""
    protocol, episode = turn.protocol, turn.episode
    original = (
        await answers.answer_from_message(
            turn.session, episode_id=episode.id, message_id=message_id
        )
        if message_id is not None
        else None
    )
    if original is None:
        # Nothing of ours came from that message (sent before enrolment, or a command):
        # read it as a new message.
        return False
    if await gate(turn):
        return True
    before = flags_in(protocol, original.raw_text)
    checkin = await turn.session.get(CheckIn, original.checkin_id) if original.checkin_id else None
    question = _question_of(protocol, original.question_id)
    if (
        checkin is not None
        and question is not None
        and checkin.status == CheckInStatus.AWAITING
        and original.status == "unclear"
        and _current_question_id(turn, checkin) == question.id
    ):
        # The edited message was a not-understood attempt at the question still open.
        return False
    if question is None or checkin is None or question.type == "photo":
        # Not an answer to a protocol question (or a photo's caption): a corrected note.
        if original.question_id == "baseline" and episode.baseline_source == "patient":
            _correct_baseline(turn, text=text, message_id=message_id)
            await scan_free_text(turn, text=text, skip_flags=before)
            return True
        await save_note(
            turn, text=text, message_id=message_id, kind="correction", skip_flags=before
        )
        return True
    await _correct_answer(
        turn, checkin=checkin, question=question, text=text, message_id=message_id, before=before
    )
    return True


def _correct_baseline(turn: Turn, *, text: str, message_id: int | None) -> None:
    """The baseline pain the patient typed, corrected."""
    parsed = parse_scale(text, minimum=0, maximum=10)
    save_answer(
        turn,
        question_id="baseline",
        kind="correction",
        text=text,
        parsed=parsed,
        message_id=message_id,
    )
    if parsed.status == "ok" and parsed.value is not None:
        turn.episode.baseline_pain = parsed.value
        turn.outbox.say(
            t(
                turn.language,
                "Thank you, I have corrected your answer: {answer}.",
                answer=f"{parsed.value}/10",
            )
        )


async def _correct_answer(
    turn: Turn,
    *,
    checkin: CheckIn,
    question: Question,
    text: str,
    message_id: int | None,
    before: frozenset[str],
) -> None:
    """A check-in answer corrected: evaluated like a new one, then the open question again.

    ``before`` holds the red flags of the first version: they alerted already."""
    lang = turn.language
    parsed = parse_typed(turn, question, text)
    save_answer(
        turn,
        checkin=checkin,
        question_id=question.id,
        kind="correction",
        text=text,
        parsed=parsed,
        message_id=message_id,
    )
    said = answer_label(
        question,
        language=lang,
        value=parsed.value,
        option_id=parsed.option_id,
        items=parsed.items,
    )
    if parsed.status == "ok":
        observation = Observation(
            checkin_id=checkin.def_id,
            question_id=question.id,
            day=turn.day,
            value=parsed.value,
            flags=parsed.flags,
            items=parsed.items,
        )
        if said:
            turn.outbox.say(
                t(lang, "Thank you, I have corrected your answer: {answer}.", answer=said)
            )
        else:
            turn.outbox.say(t(lang, "Thank you, I have saved your correction for the team."))
        await evaluate(turn, [observation])
        await update_score(turn, checkin=checkin, instrument=question.score)
    else:
        turn.outbox.say(t(lang, "Thank you, I have saved your correction for the team."))
    asked = await scan_free_text(turn, text=text, skip_flags=before | parsed.flags)
    if not (asked and clarifying(turn.episode)):
        # The open question again, below the acknowledgement (and any safety advice).
        await resume(turn)


def _question_of(protocol: Protocol, question_id: str | None) -> Question | None:
    """The protocol question an answer row answered (None: a note, or no longer in it)."""
    if question_id is None:
        return None
    try:
        return protocol.question(question_id)
    except KeyError:
        return None


def _current_question_id(turn: Turn, checkin: CheckIn) -> str | None:
    question = turn.current_question(checkin)
    return question.id if question is not None else None
