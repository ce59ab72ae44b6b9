"""Answering the painkiller question: which classes in the last 7 days, then on how many days.

By buttons (tick the classes, "Done", then a number of days; or "None") or in words
("doliprane 3 jours", "rien", "Ixprim tous les jours"). A reply read only approximately
("topalgique ?") gets a yes/no button question before anything is saved as the answer; a reply
that names no drug is asked again once with the buttons, like every unclear answer. Each typed
message is kept as an answer row with its raw text; the complete answer (classes and days) is
saved last, evaluated by the rules (the new-opioid rule reads it) and the check-in moves on.
"""

from __future__ import annotations

from bot.db.models import CheckIn
from bot.domain.painkillers import CLASS_IDS, DAYS_IN_WEEK, read_days, read_painkillers
from bot.domain.parsing import UNCLEAR, Parsed, parse_yes_no
from bot.domain.protocol import Question
from bot.i18n import t
from bot.services.conversation.answers import answer_question
from bot.services.conversation.evaluation import save_answer
from bot.services.conversation.notes import scan_free_text
from bot.services.conversation.turn import Turn
from bot.services.painkiller_questions import (
    check_selection,
    days_selection,
    describe_use,
    render_painkillers,
    step_of,
)
from bot.services.questions import ButtonPress


def _ask(turn: Turn, *, checkin: CheckIn, question: Question, prefix: str | None = None) -> None:
    """Send the painkiller question at the step ``checkin.selection`` says."""
    turn.outbox.messages.append(
        render_painkillers(
            question,
            language=turn.language,
            checkin_id=checkin.id,
            index=checkin.question_index,
            selection=checkin.selection,
            prefix_text=prefix,
        )
    )


async def _complete(
    turn: Turn,
    *,
    checkin: CheckIn,
    question: Question,
    classes: frozenset[str],
    days: int | None,
    kind: str,
    text: str | None = None,
    message_id: int | None = None,
) -> None:
    """The whole answer is known: saved, evaluated, and the check-in moves on."""
    parsed = Parsed(
        "ok",
        value=days if classes else 0,
        option_id=None if classes else "none",
        items=classes,
    )
    await answer_question(
        turn,
        checkin=checkin,
        question=question,
        parsed=parsed,
        kind=kind,
        text=text,
        message_id=message_id,
    )


def _keep_partial(
    turn: Turn,
    *,
    checkin: CheckIn,
    question: Question,
    classes: frozenset[str],
    text: str,
    message_id: int | None,
    understood: bool,
) -> None:
    """Keep a typed message that is only part of the answer (classes before the days, or a
    name still to check), with its raw text; ``understood`` False marks it unclear."""
    save_answer(
        turn,
        checkin=checkin,
        question_id=question.id,
        kind="text",
        text=text,
        parsed=Parsed("ok" if understood else "unclear", items=classes),
        message_id=message_id,
    )


async def painkiller_text(
    turn: Turn, *, checkin: CheckIn, question: Question, text: str, message_id: int | None
) -> None:
    """A typed reply to the painkiller question, at whatever step it is."""
    step = step_of(checkin.selection)
    if step.kind == "days":
        days = read_days(text)
        if days is None:
            reading = read_painkillers(text)
            days = reading.days if reading.status == "ok" else None
        if days is not None or checkin.reask_count > 0:
            await _complete(
                turn,
                checkin=checkin,
                question=question,
                classes=frozenset(step.classes),
                days=days,
                kind="text",
                text=text,
                message_id=message_id,
            )
            return
        await answer_question(
            turn, checkin=checkin, question=question, parsed=UNCLEAR, kind="text", text=text,
            message_id=message_id,
        )  # fmt: skip
        return
    if step.kind == "check":
        answer = parse_yes_no(text)
        if answer.status == "ok":
            await _checked(
                turn, checkin=checkin, question=question, confirmed=answer.value == 1,
                kind="text", text=text, message_id=message_id,
            )  # fmt: skip
            return
        _keep_partial(
            turn, checkin=checkin, question=question, classes=frozenset(step.classes), text=text,
            message_id=message_id, understood=False,
        )  # fmt: skip
        _ask(
            turn,
            checkin=checkin,
            question=question,
            prefix=t(turn.language, "Please answer yes or no:"),
        )
        await scan_free_text(turn, text=text)
        return
    reading = read_painkillers(text)
    if reading.status == "unclear":
        await answer_question(
            turn, checkin=checkin, question=question, parsed=UNCLEAR, kind="text", text=text,
            message_id=message_id,
        )  # fmt: skip
        return
    if reading.status == "doubtful":
        _keep_partial(
            turn, checkin=checkin, question=question, classes=reading.classes, text=text,
            message_id=message_id, understood=False,
        )  # fmt: skip
        checkin.selection = check_selection(reading.classes, names=reading.names, days=reading.days)
        _ask(turn, checkin=checkin, question=question)
        await scan_free_text(turn, text=text)
        return
    if not reading.classes or reading.days is not None:
        await _complete(
            turn, checkin=checkin, question=question, classes=reading.classes,
            days=reading.days, kind="text", text=text, message_id=message_id,
        )  # fmt: skip
        return
    _keep_partial(
        turn, checkin=checkin, question=question, classes=reading.classes, text=text,
        message_id=message_id, understood=True,
    )  # fmt: skip
    _to_days(turn, checkin=checkin, question=question, classes=reading.classes)
    await scan_free_text(turn, text=text)


def _to_days(turn: Turn, *, checkin: CheckIn, question: Question, classes: frozenset[str]) -> None:
    """Classes known: say what was understood and ask on how many days."""
    lang = turn.language
    checkin.selection = days_selection(classes)
    checkin.reask_count = 0
    turn.outbox.say(t(lang, "Noted: {answer}.", answer=describe_use(classes, None, lang)))
    _ask(turn, checkin=checkin, question=question)


async def _checked(
    turn: Turn,
    *,
    checkin: CheckIn,
    question: Question,
    confirmed: bool,
    kind: str,
    text: str | None = None,
    message_id: int | None = None,
) -> None:
    """The patient confirmed (or not) the painkillers read approximately in their reply."""
    step = step_of(checkin.selection)
    classes = frozenset(step.classes)
    if not confirmed:
        if text is not None:
            _keep_partial(
                turn, checkin=checkin, question=question, classes=frozenset(), text=text,
                message_id=message_id, understood=False,
            )  # fmt: skip
        checkin.selection = []
        _ask(
            turn,
            checkin=checkin,
            question=question,
            prefix=t(turn.language, "Then please tap the painkillers you took:"),
        )
        return
    if step.days is not None:
        await _complete(
            turn, checkin=checkin, question=question, classes=classes, days=step.days,
            kind=kind, text=text, message_id=message_id,
        )  # fmt: skip
        return
    if text is not None:
        _keep_partial(
            turn, checkin=checkin, question=question, classes=classes, text=text,
            message_id=message_id, understood=True,
        )  # fmt: skip
    _to_days(turn, checkin=checkin, question=question, classes=classes)


async def painkiller_button(
    turn: Turn,
    *,
    checkin: CheckIn,
    question: Question,
    press: ButtonPress,
    message_id: int | None,
) -> str | None:
    """A button of the painkiller question; returns the toast (a stale press is refused)."""
    lang = turn.language
    stale = t(lang, "This question is closed. Thank you!")
    step = step_of(checkin.selection)
    if step.kind == "classes":
        if press.kind == "t":
            return _tick(
                turn, checkin=checkin, question=question, press=press, message_id=message_id
            )
        if press.kind == "n":
            await _complete(
                turn, checkin=checkin, question=question, classes=frozenset(), days=0,
                kind="button", message_id=message_id,
            )  # fmt: skip
            return None
        if press.kind == "d":
            if not step.classes:
                return t(lang, "Tick the painkillers you took, or tap “None”.")
            _to_days(turn, checkin=checkin, question=question, classes=frozenset(step.classes))
            return None
        return stale
    if press.kind != "a" or press.value is None:
        return stale
    if step.kind == "days":
        if not press.value.isdigit() or not 1 <= int(press.value) <= DAYS_IN_WEEK:
            return stale
        await _complete(
            turn, checkin=checkin, question=question, classes=frozenset(step.classes),
            days=int(press.value), kind="button", message_id=message_id,
        )  # fmt: skip
        return None
    if press.value not in ("y", "n"):
        return stale
    await _checked(
        turn, checkin=checkin, question=question, confirmed=press.value == "y", kind="button",
        message_id=message_id,
    )  # fmt: skip
    return None


def _tick(
    turn: Turn, *, checkin: CheckIn, question: Question, press: ButtonPress, message_id: int | None
) -> str | None:
    """Tick or untick one class: the message is edited in place."""
    try:
        class_id = CLASS_IDS[int(press.value or "")]
    except (ValueError, IndexError):
        return t(turn.language, "This question is closed. Thank you!")
    selection = list(checkin.selection or [])
    if class_id in selection:
        selection.remove(class_id)
    else:
        selection.append(class_id)
    checkin.selection = selection
    rendered = render_painkillers(
        question,
        language=turn.language,
        checkin_id=checkin.id,
        index=checkin.question_index,
        selection=selection,
        prefix_text=None,
    )
    if message_id is None:
        turn.outbox.messages.append(rendered)
    else:
        turn.outbox.edits.append((message_id, rendered))
    return None
