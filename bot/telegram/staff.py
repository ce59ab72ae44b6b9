"""The staff side in Telegram: alert buttons (Acknowledge / Resolve) and staff commands.

Only allow-listed user ids (``STAFF_USER_IDS`` plus ``python -m bot staff add``) may act; anyone
else gets a polite refusal and the attempt is audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot.i18n import t
from bot.services import alerts, audit
from bot.services.context import ServiceContext
from bot.services.ports import DeliveryError, SentRef

log = structlog.get_logger(__name__)
STAFF_LANGUAGE = "fr"


class StaffHandlers:
    """Handlers for the staff chat."""

    def __init__(self, ctx: ServiceContext, staff_ids: Callable[[], Awaitable[set[int]]]) -> None:
        self._ctx = ctx
        self._staff_ids = staff_ids

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add the staff handlers (before the patient button handler: patterns are exclusive)."""
        application.add_handler(CallbackQueryHandler(self.on_alert_button, pattern=r"^[kr]:\d+$"))

    async def is_staff(self, user_id: int | None) -> bool:
        """True for allow-listed staff."""
        return user_id is not None and user_id in await self._staff_ids()

    async def refuse(self, user_id: int | None, action: str) -> None:
        """Audit a refused staff action."""
        async with self._ctx.sessions.begin() as session:
            audit.record(
                session,
                at=self._ctx.clock.now(),
                actor=f"user:{user_id}",
                action="staff_action_refused",
                attempted=action,
            )

    async def on_alert_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Acknowledge or resolve an alert from its card."""
        query = update.callback_query
        assert query is not None
        user = query.from_user
        kind, alert_id = (query.data or "").split(":")
        if not await self.is_staff(user.id if user else None):
            await self.refuse(user.id if user else None, f"alert_{kind}")
            await query.answer(
                t(STAFF_LANGUAGE, "Sorry, only the unit's staff can do this."), show_alert=True
            )
            return
        assert user is not None
        name = user.full_name or str(user.id)
        if kind == "k":
            changed = await alerts.acknowledge(
                self._ctx, alert_id=int(alert_id), staff_name=name, staff_id=user.id
            )
        else:
            changed = await alerts.resolve(
                self._ctx, alert_id=int(alert_id), staff_name=name, staff_id=user.id
            )
        if changed is None:
            await query.answer(t(STAFF_LANGUAGE, "This alert was already handled."))
            return
        await query.answer(t(STAFF_LANGUAGE, "Done."))
        await alerts.deliver_pending(self._ctx)
        card = await alerts.card_for(self._ctx, int(alert_id))
        message = query.message
        if (
            card is not None
            and message is not None
            and changed.staff_message_id != message.message_id
        ):
            try:
                await self._ctx.messenger.edit(SentRef(message.chat.id, message.message_id), card)
            except DeliveryError as exc:
                log.warning("card_edit_failed", error=type(exc).__name__)
