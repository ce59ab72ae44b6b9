"""The buttons of an alert card in Telegram: "Acknowledge" (``k:<alert id>``) and "Resolve…"
(``r:<alert id>``), which asks for an optional note (:mod:`bot.services.alert_actions`).

The card may be pressed in the staff chat or in the on-call chat; the note is asked, and
answered, in the chat where it was pressed (see :mod:`bot.telegram.dialog_answers`).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.i18n import t
from bot.services import alert_actions
from bot.services.ports import SentRef
from bot.services.questions import row_id
from bot.telegram.staff_access import StaffAccess, answer_tap

#: The callback data of an alert card's buttons (a patient's buttons never look like this).
PATTERN = r"^[kr]:\d+$"


class AlertButtons:
    """The handler of an alert card's buttons."""

    def __init__(self, access: StaffAccess) -> None:
        self._access = access

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Acknowledge an alert from its card, or start resolving it."""
        query = update.callback_query
        assert query is not None
        user = query.from_user
        kind, _, raw_id = (query.data or "").partition(":")
        if not await self._access.is_staff(user.id if user else None):
            await self._access.refuse_tap(query, f"alert_{kind}")
            return
        try:
            alert_id = row_id(raw_id)
        except ValueError:  # forged: no alert has that id
            await answer_tap(
                query, t(self._access.ctx.unit.staff_language, "This alert no longer exists.")
            )
            return
        assert user is not None
        message = query.message
        pressed = SentRef(message.chat.id, message.message_id) if message is not None else None
        chat_id = message.chat.id if message is not None else user.id
        ctx = self._access.ctx
        if kind == "r":
            reply = await alert_actions.ask_note(
                ctx, alert_id=alert_id, chat_id=chat_id, user_id=user.id, pressed=pressed
            )
        else:
            reply = await alert_actions.acknowledge(
                ctx,
                alert_id=alert_id,
                staff_id=user.id,
                staff_name=user.full_name,
                pressed=pressed,
            )
        await self._access.show(chat_id, reply, tap=query)
