"""What a typed text, an edit or a button press is an answer to, and who handles it.

The episode says what we wait for: consent, the baseline pain, a yes/no about one red flag, or
the open check-in question; anything else is a note for staff (:mod:`.notes`).
"""

from __future__ import annotations

from bot.db.models import CheckIn
from bot.db.queries import episodes
from bot.domain.parsing import Parsed, parse_scale, parse_yes_no, read_against_own_words
from bot.domain.states import (
    BASELINE,
    CONSENT,
    FOLLOW_UP_OVER,
    Awaiting,
    CheckInStatus,
    EpisodeStatus,
)
from bot.i18n import t
from bot.services.conversation.answers import answer_button, answer_question, parse_typed
from bot.services.conversation.clarify import clarified
from bot.services.conversation.consent import answer_consent, gate, set_baseline
from bot.services.conversation.corrections import correct
from bot.services.conversation.evaluation import save_answer
from bot.services.conversation.notes import save_note, scan_free_text
from bot.services.conversation.painkillers import painkiller_button, painkiller_text
from bot.services.conversation.prompts import consent_for, current_protocol
from bot.services.conversation.turn import Turn
from bot.services.ports import Button
from bot.services.questions import ButtonPress, scale_rows


async def route_text(turn: Turn, *, text: str, message_id: int | None) -> None:
    """A typed message: the answer to what we wait for, or a note read for red flags."""
    episode, outbox = turn.episode, turn.outbox
    if await gate(turn):
        return
    if episode.status in FOLLOW_UP_OVER:
        await save_note(turn, text=text, message_id=message_id)
        return
    awaiting = episode.awaiting
    if awaiting == CONSENT:
        parsed = parse_yes_no(text)
        if parsed.status == "ok":
            await answer_consent(turn, accepted=parsed.value == 1)
        else:
            outbox.messages.append(consent_for(turn))
        return
    if awaiting == BASELINE:
        parsed = parse_scale(text, minimum=0, maximum=10)
        save_answer(
            turn,
            question_id="baseline",
            kind="text",
            text=text,
            parsed=parsed,
            message_id=message_id,
        )
        if parsed.status == "ok" and parsed.value is not None:
            await set_baseline(turn, value=parsed.value)
        else:
            outbox.say(
                t(
                    turn.language,
                    "Sorry, I did not understand. Could you choose a number from 0 to 10?",
                ),
                scale_rows("b:", 0, 10),
            )
        await scan_free_text(turn, text=text)
        return
    if awaiting is not None and awaiting.flag is not None:
        flag = awaiting.flag
        parsed = read_against_own_words(
            text,
            parse_yes_no(text),
            flag=flag,
            red_flags=turn.protocol.red_flags,
            fever_threshold=turn.protocol.fever_threshold_celsius,
        )
        if parsed.value == 1:
            parsed = Parsed("ok", value=1, option_id="yes", flags=frozenset({flag}))
        save_answer(
            turn,
            question_id=f"clarify_{flag}",
            kind="text",
            text=text,
            parsed=parsed,
            message_id=message_id,
        )
        # Other signs in the reply still alert ("no, but I have 39 of fever").
        await scan_free_text(turn, text=text, skip_flags=frozenset({flag}))
        await clarified(turn, flag=flag, parsed=parsed)
        return
    checkin = await episodes.open_checkin(turn.session, episode_id=episode.id)
    question = turn.current_question(checkin) if checkin is not None else None
    if checkin is not None and question is not None and question.type == "painkillers":
        await painkiller_text(
            turn, checkin=checkin, question=question, text=text, message_id=message_id
        )
        return
    if checkin is not None and question is not None:
        await answer_question(
            turn,
            checkin=checkin,
            question=question,
            parsed=parse_typed(turn, question, text),
            kind="text",
            text=text,
            message_id=message_id,
        )
        return
    await save_note(turn, text=text, message_id=message_id)


async def route_edit(turn: Turn, *, text: str, message_id: int | None) -> None:
    """An edited message: a correction of what it edited, else read as a new message."""
    if not await correct(turn, text=text, message_id=message_id):
        await route_text(turn, text=text, message_id=message_id)


async def route_button(
    turn: Turn, *, press: ButtonPress | None, message_id: int | None
) -> str | None:
    """A button press: consent, baseline, a red flag's yes/no or a check-in answer. Returns the
    toast: a press that no longer fits what we wait for (or a forged one) is refused politely."""
    episode, lang = turn.episode, turn.language
    stale = t(lang, "This question is closed. Thank you!")
    if press is None or episode.status in (EpisodeStatus.REFUSED, *FOLLOW_UP_OVER):
        return stale
    if press.kind == "c":
        if episode.awaiting != CONSENT:
            return stale
        if press.value == "i":
            turn.outbox.say(
                current_protocol(turn.ctx, turn.protocol).consent.details.get(lang),
                ((Button(t(lang, "I agree"), "c:y"), Button(t(lang, "I refuse"), "c:n")),),
            )
            return None
        await answer_consent(turn, accepted=press.value == "y")
        return None
    if await gate(turn):
        return None
    if episode.awaiting == CONSENT:
        turn.outbox.messages.append(consent_for(turn))
        return t(lang, "Please answer the consent question first.")
    if press.kind == "b":
        return await _baseline_button(turn, press=press, message_id=message_id, stale=stale)
    if press.kind == "f":
        return await _clarify_button(turn, press=press, message_id=message_id, stale=stale)
    if press.kind in ("a", "t", "d", "n"):
        checkin = await turn.session.get(CheckIn, press.checkin_id)
        if (
            checkin is None
            or checkin.episode_id != episode.id
            or checkin.status != CheckInStatus.AWAITING
            or checkin.question_index != press.question_index
        ):
            return stale
        question = turn.current_question(checkin)
        if question is None:
            return stale
        if question.type == "painkillers":
            return await painkiller_button(
                turn, checkin=checkin, question=question, press=press, message_id=message_id
            )
        return await answer_button(
            turn, checkin=checkin, question=question, press=press, message_id=message_id
        )
    return stale


async def _baseline_button(
    turn: Turn, *, press: ButtonPress, message_id: int | None, stale: str
) -> str | None:
    """A number of the baseline pain scale."""
    if turn.episode.awaiting != BASELINE or press.value is None or not press.value.isdigit():
        return stale
    value = int(press.value)
    if not 0 <= value <= 10:
        return stale
    save_answer(
        turn,
        question_id="baseline",
        kind="button",
        parsed=Parsed(status="ok", value=value),
        message_id=message_id,
    )
    await set_baseline(turn, value=value)
    return None


async def _clarify_button(
    turn: Turn, *, press: ButtonPress, message_id: int | None, stale: str
) -> str | None:
    """Yes or no to the question about one red flag."""
    assert press.value is not None
    flag, answer = press.value.split(":")
    if turn.episode.awaiting != Awaiting.clarify(flag):
        return stale
    parsed = Parsed(
        status="ok",
        value=1 if answer == "y" else 0,
        option_id="yes" if answer == "y" else "no",
        flags=frozenset({flag}) if answer == "y" else frozenset(),
    )
    save_answer(
        turn, question_id=f"clarify_{flag}", kind="button", parsed=parsed, message_id=message_id
    )
    await clarified(turn, flag=flag, parsed=parsed)
    return None
