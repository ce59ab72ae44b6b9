"""What every staff handler shares: who is staff, the audited refusal, and showing a reply.

Only allow-listed user ids (``STAFF_USER_IDS`` plus ``python -m bot staff add``) may act; anyone
else gets a polite refusal and the attempt is audited. The refusal is said at most once per
:data:`REFUSAL_EVERY` per person and chat (every attempt is still audited): a group allows only
20 messages a minute, and a stranger repeating ``/patients`` must not use them up. A failed reply,
or a tap Telegram no longer lets us answer (too old, or already answered), is logged, not raised:
the nurse sees no answer and tries again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from telegram import CallbackQuery
from telegram.error import TelegramError

from bot.i18n import t
from bot.services import audit, staff_answers
from bot.services.context import ServiceContext
from bot.services.ports import DeliveryError, OutgoingMessage, SentRef
from bot.services.staff_reply import Edit, StaffReply

log = structlog.get_logger(__name__)

#: A stranger is told "staff only" at most once in this many seconds per chat.
REFUSAL_EVERY = 60.0
#: Strangers remembered for that purpose (memory stays bounded).
_MAX_REMEMBERED = 4096
#: How long the list of staff ids read for :meth:`StaffAccess.may_be_staff` is reused.
STAFF_LIST_FOR = 60.0


async def answer_tap(query: CallbackQuery, text: str | None = None, *, alert: bool = False) -> None:
    """Stop the button's spinner; a tap Telegram no longer accepts an answer for is no error."""
    try:
        await query.answer(text, show_alert=alert)
    except TelegramError as exc:
        log.info("tap_answer_refused", error=type(exc).__name__)


class StaffAccess:
    """The staff check and the way back to a staff chat, for every staff handler."""

    def __init__(self, ctx: ServiceContext, staff_ids: Callable[[], Awaitable[set[int]]]) -> None:
        self.ctx = ctx
        self._staff_ids = staff_ids
        self._refused_at: dict[tuple[int | None, int], float] = {}
        self._listed: set[int] = set()
        self._listed_at: float | None = None
        self._confirmed: set[int] = set()

    def refusal(self) -> str:
        """What a stranger is told when trying a staff command or button."""
        return t(self.ctx.unit.staff_language, "Sorry, only the unit's staff can do this.")

    async def is_staff(self, user_id: int | None) -> bool:
        """True for allow-listed staff (read now: a removal takes effect at once)."""
        staff = user_id is not None and user_id in await self._staff_ids()
        if staff and user_id is not None:
            self._confirmed.add(user_id)
        return staff

    async def may_be_staff(self, user_id: int) -> bool:
        """False only for someone who cannot have a staff dialog open: not on the staff list
        read in the last :data:`STAFF_LIST_FOR` seconds, and never confirmed as staff by this
        process (a dialog starts with a staff command, which checks :meth:`is_staff`). So a
        patient's answer costs no staff query; the answer itself still checks :meth:`is_staff`.
        """
        if user_id in self._confirmed:
            return True
        now = time.monotonic()
        if self._listed_at is None or now - self._listed_at > STAFF_LIST_FOR:
            self._listed = await self._staff_ids()
            self._listed_at = now
        return user_id in self._listed

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

    def should_tell(self, user_id: int | None, chat_id: int) -> bool:
        """True when this stranger was not told "staff only" in this chat within the last
        :data:`REFUSAL_EVERY` seconds (and remember that they are told now)."""
        now = time.monotonic()
        key = (user_id, chat_id)
        last = self._refused_at.get(key)
        if last is not None and now - last < REFUSAL_EVERY:
            return False
        if len(self._refused_at) >= _MAX_REMEMBERED:
            self._refused_at = {
                k: at for k, at in self._refused_at.items() if now - at < REFUSAL_EVERY
            }
        self._refused_at[key] = now
        return True

    async def refuse_tap(self, query: CallbackQuery, action: str) -> None:
        """A stranger pressed a staff button: audit it and say so in a pop-up."""
        user = query.from_user
        await self.refuse(user.id if user else None, action)
        await answer_tap(query, self.refusal(), alert=True)

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
            await answer_tap(tap, reply.toast)
        if reply.edit is not None:
            await self._edit(chat_id, reply.edit)
        sent = [await self.say(chat_id, message) for message in reply.messages]
        await staff_answers.after_shown(self.ctx, reply, first=sent[0] if sent else None)

    async def _edit(self, chat_id: int, edit: Edit) -> None:
        try:
            await self.ctx.messenger.edit(SentRef(chat_id, edit.message_id), edit.message)
        except DeliveryError as exc:
            log.warning("staff_edit_failed", error=type(exc).__name__)
