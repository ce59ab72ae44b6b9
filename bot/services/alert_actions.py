"""What staff do from an alert card: acknowledge it, or resolve it with an optional note.

"Resolve…" opens a short dialog (a staff dialog row, so a restart keeps it): the next reply to
the bot is the note, or "No note" resolves without one. Each function returns what the staff
member sees (:class:`~bot.services.staff_reply.StaffReply`); the card itself is re-posted once
that is shown (:func:`refresh_card`).
"""

from __future__ import annotations

from typing import Any

import structlog

from bot.domain.states import AlertStatus
from bot.i18n import t
from bot.services import alerts, staff_dialogs, staff_views
from bot.services.context import ServiceContext
from bot.services.ports import Button, DeliveryError, OutgoingMessage, SentRef
from bot.services.staff_dialogs import Dialog, DialogKind
from bot.services.staff_reply import CardChange, Edit, StaffReply, cancel_row, group_hint, say

log = structlog.get_logger(__name__)
#: The resolution dialog's only step.
NOTE_STEP = "note"


async def acknowledge(
    ctx: ServiceContext,
    *,
    alert_id: int,
    staff_id: int,
    staff_name: str | None,
    pressed: SentRef | None,
) -> StaffReply:
    """ "Acknowledge": re-escalation stops; the card says who took it."""
    lang = ctx.unit.staff_language
    changed = await alerts.acknowledge(
        ctx, alert_id=alert_id, staff_name=staff_name or str(staff_id), staff_id=staff_id
    )
    if changed is None:
        return StaffReply(toast=t(lang, "This alert was already handled."))
    return StaffReply(
        toast=t(lang, "Done."),
        card=CardChange(alert_id, changed.staff_message_id, pressed),
    )


async def ask_note(
    ctx: ServiceContext, *, alert_id: int, chat_id: int, user_id: int, pressed: SentRef | None
) -> StaffReply:
    """ "Resolve…": ask for an optional note in ``chat_id``; the pending state is a dialog row
    that remembers the card, to re-post it once resolved."""
    lang = ctx.unit.staff_language
    if await staff_views.alert_status(ctx, alert_id) in (None, AlertStatus.RESOLVED):
        return StaffReply(toast=t(lang, "This alert was already handled."))
    data: dict[str, Any] = {"alert_id": alert_id}
    if pressed is not None:
        data.update(card_chat=pressed.chat_id, card_message=pressed.message_id)
    dialog = await staff_dialogs.begin(
        ctx, chat_id=chat_id, user_id=user_id, kind=DialogKind.RESOLVE, step=NOTE_STEP, data=data
    )
    buttons = (Button(t(lang, "No note"), f"sn:{dialog.id}"), *cancel_row(dialog.id, language=lang))
    prompt = t(lang, "Note? (optional) Reply with a short note, or tap “No note”.")
    question = say(prompt + group_hint(chat_id, language=lang), (buttons,))
    return StaffReply(messages=question.messages, prompt_of=dialog)


async def resolve(
    ctx: ServiceContext,
    *,
    dialog: Dialog,
    user_id: int,
    user_name: str | None,
    note: str | None,
) -> StaffReply:
    """Close the alert of a resolution dialog, with ``note`` when one was typed; the note
    question is edited into the outcome. Nothing when the dialog was already closed (a double
    tap, or a note typed while "No note" was being handled)."""
    lang = ctx.unit.staff_language
    if not await staff_dialogs.finish(ctx, dialog_id=dialog.id):
        return StaffReply()
    alert_id = int(dialog.data["alert_id"])
    changed = await alerts.resolve(
        ctx,
        alert_id=alert_id,
        staff_name=user_name or str(user_id),
        staff_id=user_id,
        note=note or None,
    )
    if changed is None:
        done = t(lang, "This alert was already handled.")
    elif note:
        done = t(lang, "✅ Resolved, note saved.")
    else:
        done = t(lang, "✅ Resolved without a note.")
    card = None
    if changed is not None:
        card_message = dialog.data.get("card_message")
        pressed = (
            SentRef(int(dialog.data["card_chat"]), int(card_message))
            if card_message is not None
            else None
        )
        card = CardChange(alert_id, changed.staff_message_id, pressed)
    prompt = dialog.data.get("prompt")
    if prompt is None:
        # The question's id is not known (not sent, or the note beat its id to the database).
        return StaffReply(messages=say(done).messages, card=card)
    return StaffReply(edit=Edit(int(prompt), OutgoingMessage(done)), card=card)


async def refresh_card(ctx: ServiceContext, change: CardChange) -> None:
    """Post the card's new state: the staff chat's copy through the alert delivery (retried),
    the copy whose button was pressed (e.g. in the on-call chat) directly."""
    await alerts.deliver_pending(ctx)
    card = await alerts.card_for(ctx, change.alert_id)
    pressed = change.pressed
    in_staff_chat = pressed is not None and (pressed.chat_id, pressed.message_id) == (
        ctx.unit.staff_chat_id,
        change.staff_message_id,
    )
    if card is not None and pressed is not None and not in_staff_chat:
        try:
            await ctx.messenger.edit(pressed, card)
        except DeliveryError as exc:
            log.warning("card_edit_failed", error=type(exc).__name__)
