"""How a question looks on the patient's phone, and the compact button data that comes back.

Button data (at most 64 bytes, Telegram's limit) names the check-in row and the question's
position, so a press on an old message is recognised as stale and a forged press for another
patient's check-in is refused (the handler checks the check-in belongs to the chat).

    c:<y|n|i>                  consent: yes, no, more information
    b:<n>                      baseline pain n
    a:<checkin>:<q>:<v>        answer v to question q (scale value, option index, 1/0, s = skip;
                               painkillers: days 1-7, y/n to "did you mean ...?")
    t:<checkin>:<q>:<i>        toggle red flag i of a checklist (painkillers: class i)
    d:<checkin>:<q>            checklist done
    n:<checkin>:<q>            checklist "none of these" (painkillers: none taken)
    f:<flag>:<y|n>             clarify a red flag read in free text
    x:<y|n>                    confirm /stop
    e:<y|n>                    confirm /delete (an erasure request)
    l:<lang>                   choose the language
    k:<alert> / r:<alert>      staff: acknowledge / resolve an alert
    se:<dialog>:<step>:<v>     staff dialog choice (guided /enroll: side, indication...)
    sn:<dialog> / sx:<dialog>  staff dialog: resolve without a note / cancel
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.protocol import Protocol, Question
from bot.i18n import t
from bot.services.painkiller_questions import describe_use, render_painkillers
from bot.services.ports import Button, OutgoingMessage


@dataclass(frozen=True)
class ButtonPress:
    """Decoded button data."""

    kind: str
    checkin_id: int | None = None
    question_index: int | None = None
    value: str | None = None


#: Ids and positions above this cannot be ours (the database's 32-bit integers): a forged press
#: such as ``a:99999999999999999999:0:1`` is refused here, before any query.
MAX_ID = 2**31 - 1


def row_id(text: str) -> int:
    """A database id from button data (``ValueError`` when it cannot be one)."""
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        raise ValueError("not a row id")
    return int(text)


def decode(data: str | None) -> ButtonPress | None:
    """Decode button data; None when malformed (forged, absent or from an older bot version)."""
    if not data:
        return None
    parts = data.split(":")
    kind = parts[0]
    try:
        if kind in ("a", "t") and len(parts) == 4:
            return ButtonPress(kind, row_id(parts[1]), row_id(parts[2]), parts[3])
        if kind in ("d", "n") and len(parts) == 3:
            return ButtonPress(kind, row_id(parts[1]), row_id(parts[2]))
        if kind in ("c", "b", "x", "e", "l", "k", "r") and len(parts) == 2 and parts[1]:
            return ButtonPress(kind, value=parts[1])
        if kind == "f" and len(parts) == 3 and parts[2] in ("y", "n"):
            return ButtonPress(kind, value=f"{parts[1]}:{parts[2]}")
    except ValueError:
        return None
    return None


def scale_rows(prefix: str, minimum: int, maximum: int) -> tuple[tuple[Button, ...], ...]:
    """A one-tap 0-10 keyboard in two rows (large enough for an elderly thumb)."""
    values = list(range(minimum, maximum + 1))
    half = (len(values) + 1) // 2
    rows = (values[:half], values[half:])
    return tuple(tuple(Button(str(v), f"{prefix}{v}") for v in row) for row in rows if row)


def render_question(
    protocol: Protocol,
    question: Question,
    *,
    language: str,
    checkin_id: int,
    index: int,
    selection: list[str] | None = None,
    prefix_text: str | None = None,
) -> OutgoingMessage:
    """The message asking ``question``, with its keyboard."""
    if question.type == "painkillers":
        return render_painkillers(
            question,
            language=language,
            checkin_id=checkin_id,
            index=index,
            selection=selection,
            prefix_text=prefix_text,
        )
    text = question.text.get(language)
    if prefix_text:
        text = f"{prefix_text}\n{text}"
    base = f"a:{checkin_id}:{index}:"
    buttons: tuple[tuple[Button, ...], ...] = ()
    if question.type == "scale":
        buttons = scale_rows(base, question.min, question.max)
    elif question.type == "choice":
        buttons = tuple(
            (Button(option.label.get(language), f"{base}{i}"),)
            for i, option in enumerate(question.options)
        )
    elif question.type == "yes_no":
        buttons = ((Button(t(language, "Yes"), f"{base}1"), Button(t(language, "No"), f"{base}0")),)
    elif question.type == "checklist":
        ticked = set(selection or [])
        rows = []
        for i, flag in enumerate(question.flags):
            label = protocol.red_flags[flag].label.get(language)
            mark = "☑ " if flag in ticked else "☐ "
            rows.append((Button(mark + label, f"t:{checkin_id}:{index}:{i}"),))
        rows.append((Button(t(language, "None of these"), f"n:{checkin_id}:{index}"),))
        rows.append((Button(t(language, "Done"), f"d:{checkin_id}:{index}"),))
        buttons = tuple(rows)
    if question.optional:
        buttons = (*buttons, (Button(t(language, "Skip"), f"{base}s"),))
    return OutgoingMessage(text=text, buttons=buttons, question_id=question.id)


def answer_label(
    question: Question,
    *,
    language: str,
    value: int | None,
    option_id: str | None,
    items: frozenset[str] = frozenset(),
) -> str:
    """What was understood, said back to the patient ('Noted: 4/10')."""
    if question.type == "painkillers":
        return describe_use(items, value if items else None, language)
    if question.type == "scale" and value is not None:
        return f"{value}/{question.max}"
    if question.type == "choice" and option_id is not None:
        for option in question.options:
            if option.id == option_id:
                return option.label.get(language)
    if question.type == "yes_no" and value is not None:
        return t(language, "Yes") if value else t(language, "No")
    return ""
