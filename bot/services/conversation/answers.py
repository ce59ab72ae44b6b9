"""Answering a check-in question: save the answer, evaluate the rules, ask the next question.

A not-understood answer is asked again once with the question's hint and its buttons; a second
unclear answer is saved as unclear and the check-in moves on. Buttons of a check-in question
(a value, a checklist tick, "done", "none of these") arrive here from :mod:`.routing`."""

from __future__ import annotations

import structlog

from bot.db.models import Answer, CheckIn
from bot.db.queries import episodes
from bot.domain.parsing import SKIP, Parsed, parse_question
from bot.domain.protocol import Question
from bot.domain.rules import Observation
from bot.domain.states import CheckInStatus, EpisodeStatus
from bot.i18n import format_local, t
from bot.services.conversation.clarify import clarifying
from bot.services.conversation.education import explain_expected
from bot.services.conversation.evaluation import evaluate, save_answer
from bot.services.conversation.notes import scan_free_text
from bot.services.conversation.scores import update_score
from bot.services.conversation.turn import Turn
from bot.services.questions import ButtonPress, answer_label, render_question

log = structlog.get_logger(__name__)

#: The Answer row holding a check-in's KOOS JR interval score.


def parse_typed(turn: Turn, question: Question, text: str) -> Parsed:
    """A typed answer to ``question`` (a checklist reads the protocol's red-flag phrases)."""
    return parse_question(
        question,
        text,
        language=turn.language,
        red_flags=turn.protocol.red_flags,
        fever_threshold=turn.protocol.fever_threshold_celsius,
    )


async def answer_question(
    turn: Turn,
    *,
    checkin: CheckIn,
    question: Question,
    parsed: Parsed,
    kind: str,
    text: str | None = None,
    message_id: int | None = None,
    file_id: str | None = None,
) -> Answer:
    """Save an answer to the open question, evaluate the rules, ask the next question.

    Not understood: asked again once, with the question's hint and its buttons; a second unclear
    answer is saved as unclear (a red-flag question then alerts for review) and we move on.
    """
    protocol, episode, outbox, lang = turn.protocol, turn.episode, turn.outbox, turn.language
    saved = save_answer(
        turn,
        checkin=checkin,
        question_id=question.id,
        kind=kind,
        text=text,
        parsed=parsed,
        message_id=message_id,
        file_id=file_id,
    )
    typed = text if kind == "text" else None
    if parsed.status == "unclear" and checkin.reask_count == 0:
        checkin.reask_count = 1
        await _ask_again(turn, checkin=checkin, question=question, parsed=parsed, typed=typed)
        return saved
    observation = Observation(
        checkin_id=checkin.def_id,
        question_id=question.id,
        day=turn.day,
        value=parsed.value,
        flags=parsed.flags,
        unclear=parsed.status == "unclear",
        items=parsed.items,
    )
    said = answer_label(
        question,
        language=lang,
        value=parsed.value,
        option_id=parsed.option_id,
        items=parsed.items,
    )
    if said and parsed.status == "ok":
        outbox.say(t(lang, "Noted: {answer}.", answer=said))
    await evaluate(turn, [observation])
    await update_score(turn, checkin=checkin, instrument=question.score)
    if typed:
        told = await scan_free_text(turn, text=typed, skip_flags=parsed.flags)
        if not told and question.type == "text":
            explain_expected(turn, text=typed)
    checkin.question_index += 1
    checkin.reask_count = 0
    checkin.selection = []
    checkin.next_reminder_at = None
    if clarifying(episode):
        return saved
    following = turn.current_question(checkin)
    if following is not None:
        outbox.messages.append(
            render_question(
                protocol,
                following,
                language=lang,
                checkin_id=checkin.id,
                index=checkin.question_index,
            )
        )
        return saved
    await _close(turn, checkin=checkin)
    return saved


async def _ask_again(
    turn: Turn, *, checkin: CheckIn, question: Question, parsed: Parsed, typed: str | None
) -> None:
    """The one re-ask of a question not understood, with its buttons.

    What the text says is read first: a red flag gets its advice before the question comes
    back, and then without "I did not understand" (the reply was read, just not as a score).
    A doubtful mention of the question's own flags is not asked about separately: the re-ask
    is that question, so the patient gets ONE question. A reply that contradicts itself ("no,
    it won't stop") is told so.
    """
    lang, outbox = turn.language, turn.outbox
    told = False
    if typed:
        told = await scan_free_text(
            turn, text=typed, not_asking=frozenset(turn.protocol.flags_of(question))
        ) or explain_expected(turn, text=typed)
    if clarifying(turn.episode):
        return  # a red flag's yes/no question was asked; the check-in question follows it
    if parsed.contradiction:
        prefix: str | None = t(
            lang, "Your answer seems to say both yes and no. Please tap the answer that fits:"
        )
    elif told:
        prefix = None
    elif question.hint:
        prefix = question.hint.get(lang)
    else:
        prefix = t(lang, "Sorry, I did not understand. Please tap one of the buttons.")
    outbox.messages.append(
        render_question(
            turn.protocol,
            question,
            language=lang,
            checkin_id=checkin.id,
            index=checkin.question_index,
            selection=checkin.selection,
            prefix_text=prefix,
        )
    )


async def _close(turn: Turn, *, checkin: CheckIn) -> None:
    """The check-in's last question is answered: say when the next one comes (or that this was
    the last, which completes the follow-up)."""
    episode, lang = turn.episode, turn.language
    checkin.status = CheckInStatus.ANSWERED
    checkin.closed_at = turn.now
    next_due = await episodes.next_checkin_due(turn.session, episode_id=episode.id, after=turn.now)
    if next_due is None:
        turn.outbox.say(
            t(lang, "Thank you, that is all. This was the last check-in of your follow-up.")
        )
        episode.status = EpisodeStatus.COMPLETED
    else:
        turn.outbox.say(
            t(
                lang,
                "Thank you, that is all for today. Next check-in: {when}.",
                when=format_local(next_due, lang, episode.time_zone),
            )
        )


async def answer_button(
    turn: Turn,
    *,
    checkin: CheckIn,
    question: Question,
    press: ButtonPress,
    message_id: int | None,
) -> str | None:
    """A button of the open check-in question; returns the toast (a stale press is refused)."""
    lang = turn.language
    stale = t(lang, "This question is closed. Thank you!")
    if question.type == "checklist":
        if press.kind == "t":
            return _tick(
                turn, checkin=checkin, question=question, press=press, message_id=message_id
            )
        if press.kind not in ("d", "n"):
            return stale
        flags = frozenset(checkin.selection or []) if press.kind == "d" else frozenset()
        if press.kind == "d" and not flags:
            return t(lang, "Tick the signs you have, or tap “None of these”.")
        parsed = Parsed(
            status="ok", flags=flags, option_id="none" if not flags else None, value=len(flags)
        )
    else:
        if press.kind != "a" or press.value is None:
            return stale
        button = _button_value(question, press.value)
        if button is None:
            return stale
        parsed = button
    await answer_question(
        turn,
        checkin=checkin,
        question=question,
        parsed=parsed,
        kind="button",
        message_id=message_id,
    )
    return None


def _tick(
    turn: Turn,
    *,
    checkin: CheckIn,
    question: Question,
    press: ButtonPress,
    message_id: int | None,
) -> str | None:
    """Tick or untick one sign of a checklist: the message is edited in place."""
    try:
        flag = question.flags[int(press.value or "")]
    except (ValueError, IndexError):
        return t(turn.language, "This question is closed. Thank you!")
    selection = list(checkin.selection or [])
    if flag in selection:
        selection.remove(flag)
    else:
        selection.append(flag)
    checkin.selection = selection
    rendered = render_question(
        turn.protocol,
        question,
        language=turn.language,
        checkin_id=checkin.id,
        index=checkin.question_index,
        selection=selection,
    )
    if message_id is None:
        turn.outbox.messages.append(rendered)
    else:
        turn.outbox.edits.append((message_id, rendered))
    return None


def _button_value(question: Question, value: str) -> Parsed | None:
    """Turn button data into a parsed answer (None when it does not fit the question)."""
    if value == "s":
        return SKIP if question.optional else None
    if not value.lstrip("-").isdigit():
        return None
    number = int(value)
    if question.type == "scale":
        return Parsed(status="ok", value=number) if question.min <= number <= question.max else None
    if question.type == "choice":
        if not 0 <= number < len(question.options):
            return None
        option = question.options[number]
        return Parsed(
            status="ok",
            value=option.value,
            option_id=option.id,
            flags=frozenset({option.flag}) if option.flag else frozenset(),
        )
    if question.type == "yes_no" and number in (0, 1):
        flags = frozenset({question.flag}) if (number == 1 and question.flag) else frozenset()
        return Parsed(status="ok", value=number, option_id="yes" if number else "no", flags=flags)
    return None
