"""The guided ``/enroll``: label, procedure time, knee, indication, protocol (when the unit has
several), the patient's language — one question per message, the position a staff dialog row.

Each function takes what the nurse sent and returns the reply (the next question, or why the
answer was not taken) after moving the dialog on; the last choice enrols the patient and answers
with the single-use link and its QR code. What is typed after ``/enroll`` skips the matching
steps. Choices come back as button data ``se:<dialog>:<code>:<value>`` (:data:`CHOICE_STEPS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from babel import Locale

from bot.domain.protocol import Indication, KneeSide, Protocol
from bot.errors import Refusal, UsageError
from bot.i18n import format_local, t
from bot.protocols import DEFAULT_PROTOCOL_ID
from bot.services import enrolment, staff_dialogs
from bot.services.context import ServiceContext
from bot.services.ports import Button, OutgoingMessage
from bot.services.staff_dialogs import Dialog, DialogKind
from bot.services.staff_reply import StaffReply, cancel_row, group_hint, say


class EnrolStep(StrEnum):
    """What the enrolment dialog waits for."""

    LABEL = "label"
    PROCEDURE_AT = "procedure_at"
    SIDE = "side"
    INDICATION = "indication"
    PROTOCOL = "protocol"
    LANGUAGE = "language"


#: The step a choice button answers, by the code in its data.
CHOICE_STEPS = {
    "s": EnrolStep.SIDE,
    "i": EnrolStep.INDICATION,
    "p": EnrolStep.PROTOCOL,
    "l": EnrolStep.LANGUAGE,
}


async def start(
    ctx: ServiceContext, *, chat_id: int, user_id: int, args: Sequence[str]
) -> StaffReply:
    """``/enroll [label [date time]]``: open the dialog (replacing any other of this staff
    member in this chat) and ask the first question not answered by ``args``."""
    dialog = await staff_dialogs.begin(
        ctx, chat_id=chat_id, user_id=user_id, kind=DialogKind.ENROL, step=EnrolStep.LABEL
    )
    if not args:
        return _ask(
            chat_id,
            dialog.id,
            t(
                ctx.unit.staff_language,
                "New patient (1/{total}): the unit's patient number? (no name)",
                total=_steps(ctx),
            ),
            language=ctx.unit.staff_language,
        )
    labelled = await _take_label(ctx, dialog=dialog, text=args[0])
    if labelled is None:
        return _label_refused(chat_id, dialog.id, language=ctx.unit.staff_language)
    if len(args) == 1:
        return _ask_procedure_time(ctx, chat_id=chat_id, dialog=labelled)
    return await _take_procedure_time(
        ctx, chat_id=chat_id, dialog=labelled, text=" ".join(args[1:])
    )


async def take_text(ctx: ServiceContext, *, dialog: Dialog, chat_id: int, text: str) -> StaffReply:
    """A typed answer: the label or the procedure time; the other steps are buttons."""
    if dialog.step == EnrolStep.LABEL:
        labelled = await _take_label(ctx, dialog=dialog, text=text)
        if labelled is None:
            return _label_refused(chat_id, dialog.id, language=ctx.unit.staff_language)
        return _ask_procedure_time(ctx, chat_id=chat_id, dialog=labelled)
    if dialog.step == EnrolStep.PROCEDURE_AT:
        return await _take_procedure_time(ctx, chat_id=chat_id, dialog=dialog, text=text)
    return say(t(ctx.unit.staff_language, "Please tap one of the buttons above."))


async def take_choice(
    ctx: ServiceContext, *, dialog: Dialog, user_id: int, code: str, value: str
) -> StaffReply | None:
    """A choice button: record it and ask the next question (the toast names the choice).

    None when the press belongs to another step (a button of an older message).
    """
    lang = ctx.unit.staff_language
    if CHOICE_STEPS.get(code) != dialog.step:
        return None
    data = dict(dialog.data)
    ids = ctx.protocols.registry.ids()
    if dialog.step == EnrolStep.SIDE and value in {side.value for side in KneeSide}:
        data["side"] = value
        asked = await _ask_indication(ctx, dialog_id=dialog.id, data=data)
        return StaffReply(toast=t(lang, value), messages=asked)
    if dialog.step == EnrolStep.INDICATION and value in {i.value for i in Indication}:
        data["indication"] = value
        ask_next = _ask_protocol if len(ids) > 1 else _ask_language
        asked = await ask_next(ctx, dialog_id=dialog.id, data=data)
        return StaffReply(toast=t(lang, value), messages=asked)
    if dialog.step == EnrolStep.PROTOCOL and value in ids:
        data["protocol"] = value
        asked = await _ask_language(ctx, dialog_id=dialog.id, data=data)
        return StaffReply(toast=_protocol(ctx, value).title.get(lang), messages=asked)
    if (
        dialog.step == EnrolStep.LANGUAGE
        and value in _protocol(ctx, data.get("protocol")).languages
    ):
        toast = t(lang, "Done.")
        # A double tap finishes once: only the first press enrols.
        if not await staff_dialogs.finish(ctx, dialog_id=dialog.id):
            return StaffReply(toast=toast)
        enrolled = await _enrol(ctx, user_id=user_id, data={**data, "language": value})
        return StaffReply(toast=toast, messages=enrolled)
    return None


def _choice(dialog_id: int, step: EnrolStep, value: str) -> str:
    """The data of a choice button."""
    code = next(code for code, answered in CHOICE_STEPS.items() if answered is step)
    return f"se:{dialog_id}:{code}:{value}"


def _question(
    text: str, rows: tuple[tuple[Button, ...], ...], dialog_id: int, *, language: str
) -> tuple[OutgoingMessage, ...]:
    """A question answered by tapping: its choices, then Cancel."""
    return (OutgoingMessage(text=text, buttons=(*rows, cancel_row(dialog_id, language=language))),)


def _protocol(ctx: ServiceContext, protocol_id: str | None = None) -> Protocol:
    """The chosen protocol, else the default one (the only one when the unit has one)."""
    registry = ctx.protocols.registry
    ids = registry.ids()
    if protocol_id in ids:
        return registry.latest(protocol_id)
    return registry.latest(DEFAULT_PROTOCOL_ID if DEFAULT_PROTOCOL_ID in ids else ids[0])


def _steps(ctx: ServiceContext) -> int:
    """Label, time, side, indication, (protocol when the unit has several), language."""
    return 5 + (len(ctx.protocols.registry.ids()) > 1)


def _ask(chat_id: int, dialog_id: int, text: str, *, language: str) -> StaffReply:
    """A question answered by typing, with a Cancel button."""
    return say(
        text + group_hint(chat_id, language=language),
        (cancel_row(dialog_id, language=language),),
    )


def _label_refused(chat_id: int, dialog_id: int, *, language: str) -> StaffReply:
    return _ask(
        chat_id,
        dialog_id,
        t(language, "A label is 1-64 letters, digits, '.', '_' or '-' (no name). Try again:"),
        language=language,
    )


async def _take_label(ctx: ServiceContext, *, dialog: Dialog, text: str) -> Dialog | None:
    """Step 1: keep the label and move on to the procedure time; None when it is not a label
    (a name, most likely: labels are the unit's patient numbers)."""
    label = text.strip()
    if not enrolment.LABEL_PATTERN.match(label):
        return None
    data = {"label": label}
    await staff_dialogs.advance(ctx, dialog_id=dialog.id, step=EnrolStep.PROCEDURE_AT, data=data)
    return Dialog(dialog.id, dialog.kind, EnrolStep.PROCEDURE_AT, data)


def _ask_procedure_time(ctx: ServiceContext, *, chat_id: int, dialog: Dialog) -> StaffReply:
    return _ask(
        chat_id,
        dialog.id,
        t(
            ctx.unit.staff_language,
            "{label} (2/{total}): date and time of the procedure? e.g. 01/12/2026 09:30, or 09:30 for today",
            label=dialog.data["label"],
            total=_steps(ctx),
        ),
        language=ctx.unit.staff_language,
    )


async def _take_procedure_time(
    ctx: ServiceContext, *, chat_id: int, dialog: Dialog, text: str
) -> StaffReply:
    """Step 2: keep a readable, plausible time and ask which knee."""
    lang = ctx.unit.staff_language
    moment = staff_dialogs.parse_procedure_time(
        text, now=ctx.clock.now(), time_zone=ctx.unit.time_zone
    )
    if moment is None:
        return _ask(
            chat_id,
            dialog.id,
            t(
                lang,
                "I could not read this date, or it is too far from today. Example: 01/12/2026 09:30",
            ),
            language=lang,
        )
    data = {**dialog.data, "procedure_at": moment.isoformat()}
    await staff_dialogs.advance(ctx, dialog_id=dialog.id, step=EnrolStep.SIDE, data=data)
    sides = tuple(
        Button(t(lang, side.value), _choice(dialog.id, EnrolStep.SIDE, side.value))
        for side in KneeSide
    )
    text = t(lang, "{label} (3/{total}): which knee?", label=data["label"], total=_steps(ctx))
    return StaffReply(messages=_question(text, (sides,), dialog.id, language=lang))


async def _ask_indication(
    ctx: ServiceContext, *, dialog_id: int, data: dict[str, Any]
) -> tuple[OutgoingMessage, ...]:
    """Step 4: the indication."""
    lang = ctx.unit.staff_language
    await staff_dialogs.advance(ctx, dialog_id=dialog_id, step=EnrolStep.INDICATION, data=data)
    rows = tuple(
        (Button(t(lang, i.value), _choice(dialog_id, EnrolStep.INDICATION, i.value)),)
        for i in Indication
    )
    text = t(lang, "{label} (4/{total}): indication?", label=data["label"], total=_steps(ctx))
    return _question(text, rows, dialog_id, language=lang)


async def _ask_protocol(
    ctx: ServiceContext, *, dialog_id: int, data: dict[str, Any]
) -> tuple[OutgoingMessage, ...]:
    """Step 5, when the unit has several protocols: which one."""
    lang = ctx.unit.staff_language
    await staff_dialogs.advance(ctx, dialog_id=dialog_id, step=EnrolStep.PROTOCOL, data=data)
    rows = tuple(
        (Button(_protocol(ctx, pid).title.get(lang), _choice(dialog_id, EnrolStep.PROTOCOL, pid)),)
        for pid in ctx.protocols.registry.ids()
    )
    text = t(lang, "{label} (5/{total}): which protocol?", label=data["label"], total=_steps(ctx))
    return _question(text, rows, dialog_id, language=lang)


async def _ask_language(
    ctx: ServiceContext, *, dialog_id: int, data: dict[str, Any]
) -> tuple[OutgoingMessage, ...]:
    """The last step: the patient's language, among the chosen protocol's languages."""
    await staff_dialogs.advance(ctx, dialog_id=dialog_id, step=EnrolStep.LANGUAGE, data=data)
    languages = tuple(
        Button(
            (Locale.parse(code).get_display_name(code) or code).capitalize(),
            _choice(dialog_id, EnrolStep.LANGUAGE, code),
        )
        for code in _protocol(ctx, data.get("protocol")).languages
    )
    total = _steps(ctx)
    text = t(
        ctx.unit.staff_language,
        "{label} ({step}/{total}): the patient's language?",
        label=data["label"],
        step=total,
        total=total,
    )
    return _question(text, (languages,), dialog_id, language=ctx.unit.staff_language)


async def _enrol(
    ctx: ServiceContext, *, user_id: int, data: dict[str, Any]
) -> tuple[OutgoingMessage, ...]:
    """Enrol with every answer: the link to give the patient and its QR code, or why not."""
    lang = ctx.unit.staff_language
    try:
        invitation = await enrolment.enrol(
            ctx,
            label=data["label"],
            procedure_at=datetime.fromisoformat(data["procedure_at"]),
            side=KneeSide(data["side"]),
            indication=Indication(data["indication"]),
            language=data["language"],
            protocol=_protocol(ctx, data.get("protocol")),
            actor=f"staff:{user_id}",
        )
    except UsageError as exc:
        reason = t(lang, exc.message, **exc.values) if isinstance(exc, Refusal) else str(exc)
        return say(t(lang, "Not done: {reason}", reason=reason)).messages
    expiry = format_local(invitation.expires_at, lang, ctx.unit.time_zone, "short")
    link = t(
        lang,
        "{label} enrolled. Give the patient this link (single use, until {expiry}):\n{link}",
        label=invitation.label,
        expiry=expiry,
        link=invitation.link,
    )
    qr = t(
        lang,
        "QR code for {label}: the patient scans it with the phone camera.",
        label=invitation.label,
    )
    return (
        OutgoingMessage(text=link),
        OutgoingMessage(text=qr, photo=enrolment.qr_png(invitation.link)),
    )
