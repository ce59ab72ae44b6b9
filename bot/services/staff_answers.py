"""A staff member's answer to an open dialog — typed text or a dialog button — routed to the
dialog it answers, and what follows a reply once the staff member has it.

Dialog buttons carry ``<code>:<dialog id>[...]``: ``se:<id>:<step>:<value>`` an enrolment
choice (:mod:`bot.services.staff_enrolment`), ``sn:<id>`` "No note" and ``sx:<id>`` "Cancel".
A button of a dialog that is over, or was replaced by a newer command, only says so.
"""

from __future__ import annotations

from bot.i18n import t
from bot.services import alert_actions, staff_dialogs, staff_enrolment
from bot.services.context import ServiceContext
from bot.services.ports import OutgoingMessage, SentRef
from bot.services.staff_dialogs import Dialog, DialogKind
from bot.services.staff_reply import Edit, StaffReply


async def answer_text(
    ctx: ServiceContext,
    *,
    dialog: Dialog,
    chat_id: int,
    user_id: int,
    user_name: str | None,
    text: str,
) -> StaffReply:
    """Text a staff member typed while ``dialog`` is open: a resolution note, or an enrolment
    answer."""
    if dialog.kind is DialogKind.RESOLVE:
        return await alert_actions.resolve(
            ctx, dialog=dialog, user_id=user_id, user_name=user_name, note=text.strip()
        )
    return await staff_enrolment.take_text(ctx, dialog=dialog, chat_id=chat_id, text=text)


async def answer_button(
    ctx: ServiceContext,
    *,
    chat_id: int,
    user_id: int,
    user_name: str | None,
    data: str,
    pressed_message_id: int | None,
) -> StaffReply:
    """A dialog button pressed by a staff member in ``chat_id`` (on message
    ``pressed_message_id`` when Telegram still has it)."""
    lang = ctx.unit.staff_language
    over = StaffReply(toast=t(lang, "This step is over."))
    parts = data.split(":")
    dialog = await staff_dialogs.current(ctx, chat_id=chat_id, user_id=user_id)
    if dialog is None or dialog.id != int(parts[1]):
        return over
    if parts[0] == "sx":
        await staff_dialogs.finish(ctx, dialog_id=dialog.id)
        cancelled = t(lang, "Cancelled.")
        edit = (
            Edit(pressed_message_id, OutgoingMessage(cancelled))
            if pressed_message_id is not None
            else None
        )
        return StaffReply(toast=cancelled, edit=edit)
    if parts[0] == "sn" and dialog.kind is DialogKind.RESOLVE:
        return await alert_actions.resolve(
            ctx, dialog=dialog, user_id=user_id, user_name=user_name, note=None
        )
    if parts[0] == "se" and dialog.kind is DialogKind.ENROL and len(parts) == 4:
        chosen = await staff_enrolment.take_choice(
            ctx, dialog=dialog, user_id=user_id, code=parts[2], value=parts[3]
        )
        if chosen is not None:
            return chosen
    return over


async def after_shown(ctx: ServiceContext, reply: StaffReply, *, first: SentRef | None) -> None:
    """Once the reply is shown (``first``: where its first message landed, if it did): the
    dialog remembers its question, the changed alert card is re-posted."""
    if reply.prompt_of is not None and first is not None:
        dialog = reply.prompt_of
        await staff_dialogs.advance(
            ctx,
            dialog_id=dialog.id,
            step=dialog.step,
            data={**dialog.data, "prompt": first.message_id},
        )
    if reply.card is not None:
        await alert_actions.refresh_card(ctx, reply.card)
