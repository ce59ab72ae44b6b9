"""What every staff handler shares: who is staff, the audited refusal, and showing a reply.

Only allow-listed user ids (``STAFF_USER_IDS`` plus ``python -m bot staff add``) may act; anyone
else gets a polite refusal and the attempt is audited. A failed reply is logged, not raised: the
nurse sees no answer and tries again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from telegram import CallbackQuery

from bot.i18n import t
from bot.services import audit, staff_answers
from bot.services.context import STAFF_LANGUAGE, ServiceContext
from bot.services.ports import DeliveryError, OutgoingMessage, SentRef
from bot.services.staff_reply import Edit, StaffReply

log = structlog.get_logger(__name__)


def refusal() -> str:
    """What a stranger is told when trying a staff command or button."""
    return t(STAFF_LANGUAGE, "Sorry, only the unit's staff can do this.")


class StaffAccess:
    """The staff check and the way back to a staff chat, for every staff handler."""

    def __init__(self, ctx: ServiceContext, staff_ids: Callable[[], Awaitable[set[int]]]) -> None:
        self.ctx = ctx
        self._staff_ids = staff_ids

    async def is_staff(self, user_id: int | None) -> bool:
        """True for allow-listed staff."""
        return user_id is not None and user_id in await self._staff_ids()

    async def refuse(self, user_id: int | None, action: str) -> None:
        """Audit a refused staff action."""
        async with self.ctx.sessions.begin() as session:
            audit.record(
                session,
                at=self.ctx.clock.now(),
                actor=f"user:{user_id}",
                action="staff_action_refused",
                attempted=action,
            )

    async def refuse_tap(self, query: CallbackQuery, action: str) -> None:
        """A stranger pressed a staff button: audit it and say so in a pop-up."""
        user = query.from_user
        await self.refuse(user.id if user else None, action)
        await query.answer(refusal(), show_alert=True)

    async def say(self, chat_id: int, message: OutgoingMessage) -> SentRef | None:
        """Send to a staff chat; None when Telegram did not take it."""
        try:
            return await self.ctx.messenger.send(chat_id, message)
        except DeliveryError as exc:
            log.warning("staff_reply_failed", error=type(exc).__name__)
            return None

    async def show(
        self, chat_id: int, reply: StaffReply, *, tap: CallbackQuery | None = None
    ) -> None:
        """Show a service's reply in ``chat_id``: answer the tap (first, so its spinner stops),
        edit, send, then let the service follow up (:func:`staff_answers.after_shown`)."""
        if tap is not None:
            await tap.answer(reply.toast)
        if reply.edit is not None:
            await self._edit(chat_id, reply.edit)
        sent = [await self.say(chat_id, message) for message in reply.messages]
        await staff_answers.after_shown(self.ctx, reply, first=sent[0] if sent else None)

    async def _edit(self, chat_id: int, edit: Edit) -> None:
        try:
            await self.ctx.messenger.edit(SentRef(chat_id, edit.message_id), edit.message)
        except DeliveryError as exc:
            log.warning("staff_edit_failed", error=type(exc).__name__)
