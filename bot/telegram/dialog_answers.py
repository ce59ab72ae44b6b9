"""Answers to a staff member's open dialog in Telegram: typed text (an enrolment answer, a
resolution note) and the dialog buttons (enrolment choices, "No note", "Cancel").

What the answer does is :mod:`bot.services.staff_answers`; here only Telegram's part: in a group
only a reply to the bot counts, and text that answers no open dialog goes on to the patient
handlers (group 0) untouched.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.services import staff_answers, staff_dialogs
from bot.telegram.patient import readable
from bot.telegram.staff_access import StaffAccess

#: The callback data of dialog buttons: ``se:``, ``sn:`` or ``sx:`` and the dialog's id.
PATTERN = r"^s[enx]:\d+(:|$)"


class DialogAnswers:
    """The handlers of dialog text and dialog buttons."""

    def __init__(self, access: StaffAccess) -> None:
        self._access = access

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Text answering a staff member's open dialog; anything else goes on to group 0."""
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if message is None or chat is None or user is None or not message.text:
            return
        if chat.type != ChatType.PRIVATE:
            # Only a reply to the bot counts: chatter between nurses must never become a
            # resolution note (and with privacy mode on, replies are all the bot receives).
            replied = message.reply_to_message
            if (
                replied is None
                or replied.from_user is None
                or replied.from_user.id != context.bot.id
            ):
                return
        if not await self._access.may_be_staff(user.id):
            return  # a patient (the usual case): no dialog to look up
        ctx = self._access.ctx
        dialog = await staff_dialogs.current(ctx, chat_id=chat.id, user_id=user.id)
        if dialog is None:
            return
        if not await self._access.is_staff(user.id):
            await staff_dialogs.finish(ctx, dialog_id=dialog.id)
            return
        reply = await staff_answers.answer_text(
            ctx,
            dialog=dialog,
            chat_id=chat.id,
            user_id=user.id,
            user_name=user.full_name,
            text=readable(message.text),
        )
        await self._access.show(chat.id, reply)
        raise ApplicationHandlerStop

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button of a staff dialog."""
        query = update.callback_query
        assert query is not None
        user, message = query.from_user, query.message
        if not await self._access.is_staff(user.id if user else None):
            await self._access.refuse_tap(query, "dialog_button")
            return
        assert user is not None
        chat_id = message.chat.id if message is not None else user.id
        reply = await staff_answers.answer_button(
            self._access.ctx,
            chat_id=chat_id,
            user_id=user.id,
            user_name=user.full_name,
            data=query.data or "",
            pressed_message_id=message.message_id if message is not None else None,
        )
        await self._access.show(chat_id, reply, tap=query)
