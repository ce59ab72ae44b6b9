"""Wires python-telegram-bot: the Application, its handlers (in one place) and the wake-up jobs.

Handlers only translate updates into service calls. Order matters in group 0: commands first,
then button presses, then text, then every other kind of message (so nothing a patient sends is
silently ignored).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import structlog
from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.services import conversation
from bot.services.context import ServiceContext
from bot.telegram import staff
from bot.telegram.jobs import DispatcherWaker

log = structlog.get_logger(__name__)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class ChatLocks:
    """One lock per chat: a patient's updates are handled in order, different patients at once."""

    def __init__(self) -> None:
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    def __call__(self, chat_id: int) -> asyncio.Lock:
        """The lock of ``chat_id``."""
        return self._locks[chat_id]


def build_application(
    ctx: ServiceContext,
    *,
    token: str,
    base_url: str,
    base_file_url: str,
    rate_limit: bool,
    staff_ids: Callable[[], Awaitable[set[int]]],
) -> Application[Any, Any, Any, Any, Any, Any]:
    """An Application pointed at ``base_url`` (Telegram or the sandbox), handlers wired."""
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url)
        .concurrent_updates(64)
        .connection_pool_size(128)
        .pool_timeout(30)
        .get_updates_read_timeout(35)
    )
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    application = builder.build()
    locks = ChatLocks()

    def per_chat(handler: Handler) -> Handler:
        async def wrapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            chat = update.effective_chat
            if chat is None:
                return
            async with locks(chat.id):
                await handler(update, context)

        wrapped.__doc__ = handler.__doc__
        return wrapped

    staff_handlers = staff.StaffHandlers(ctx, staff_ids)
    private = filters.ChatType.PRIVATE

    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/start [token]`` from a patient."""
        assert update.effective_chat is not None
        user = update.effective_user
        token = context.args[0] if context.args else None
        await conversation.handle_start(
            ctx,
            chat_id=update.effective_chat.id,
            token=token,
            update_id=update.update_id,
            language_code=user.language_code if user else None,
        )

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A patient's typed message (new or edited)."""
        message = update.effective_message
        assert message is not None and update.effective_chat is not None
        await conversation.handle_text(
            ctx,
            chat_id=update.effective_chat.id,
            text=message.text or "",
            update_id=update.update_id,
            message_id=message.message_id,
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A patient's button press."""
        query = update.callback_query
        assert query is not None and update.effective_chat is not None
        reply = await conversation.handle_button(
            ctx,
            chat_id=update.effective_chat.id,
            data=query.data or "",
            update_id=update.update_id,
            message_id=query.message.message_id if query.message else None,
        )
        await query.answer(reply.toast)

    async def on_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Photos, voice notes, videos, stickers, documents, locations."""
        message = update.effective_message
        assert message is not None and update.effective_chat is not None
        kind, file_id = _media_kind(message)
        await conversation.handle_media(
            ctx,
            chat_id=update.effective_chat.id,
            kind=kind,
            update_id=update.update_id,
            message_id=message.message_id,
            file_id=file_id,
            caption=message.caption,
        )

    # Group 0, order matters: staff buttons in the staff chat before patient buttons.
    application.add_handler(CommandHandler("start", per_chat(on_start), filters=private))
    staff_handlers.register(application)
    application.add_handler(CallbackQueryHandler(per_chat(on_button)))
    application.add_handler(
        MessageHandler(private & filters.TEXT & ~filters.COMMAND, per_chat(on_text))
    )
    application.add_handler(
        MessageHandler(
            private & filters.UpdateType.EDITED_MESSAGE & filters.TEXT, per_chat(on_text)
        )
    )
    application.add_handler(
        MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, per_chat(on_media))
    )
    application.add_error_handler(_on_error)
    return application


def _media_kind(message: Any) -> tuple[str, str | None]:
    if message.photo:
        return "photo", message.photo[-1].file_id
    for kind in ("voice", "video", "video_note", "audio", "document", "sticker", "animation"):
        item = getattr(message, kind, None)
        if item is not None:
            return kind, getattr(item, "file_id", None)
    if message.location is not None:
        return "location", None
    if message.contact is not None:
        return "contact", None
    return "other", None


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error type and update id only: an update holds patient content."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "handler_error",
        error=type(context.error).__name__,
        update_id=update_id,
        exc_info=context.error,
    )


def start_waker(
    application: Application[Any, Any, Any, Any, Any, Any],
    ctx: ServiceContext,
    *,
    safety_tick: timedelta,
) -> DispatcherWaker:
    """Attach the dispatcher's wake-up jobs to the application's JobQueue."""
    assert application.job_queue is not None
    waker = DispatcherWaker(application.job_queue, ctx, safety_tick=safety_tick)
    ctx.on_schedule_changed = waker.poke
    waker.start()
    return waker
