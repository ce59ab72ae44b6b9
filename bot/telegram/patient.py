"""The patient side in Telegram: /start, the patient commands, buttons, text, edits, media.

Handlers only translate updates into calls of :mod:`bot.services.conversation` and
:mod:`bot.services.patient_commands`; the conversation's position lives in the database, and a
chat's updates reach them one at a time, in order (``app.ChatOrderedProcessor``). All are
in group 0 and registered after the staff handlers (whose commands run in an earlier group and
whose button patterns are exclusive). Order inside group 0 matters:

1. ``/start`` and the patient commands (new or edited), private chats only;
2. the command buttons (``x:``, ``e:``, ``l:``), then every other button (stale ones included);
3. new text; edited messages; every other kind of message (voice, sticker, location, poll...);
4. any other command: told it is unknown, with the help.

So nothing a patient sends is silently ignored. The one exception is a live location's position
updates, which Telegram delivers as edits of the location message every few seconds: the
location itself was answered when it arrived.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    CallbackQuery,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.services import conversation, patient_commands
from bot.services.context import ServiceContext
from bot.services.conversation import Reply

log = structlog.get_logger(__name__)

#: Kinds of message that carry a Telegram file, in the order they are recognised (an animation
#: also carries a ``document``; it must be seen as an animation).
_FILE_KINDS = ("voice", "video", "video_note", "audio", "animation", "sticker", "document")
#: Kinds without a file: only the kind is kept (never coordinates or a shared phone number).
_OTHER_KINDS = ("location", "venue", "contact", "poll", "dice", "game", "story")


def media_of(message: Message) -> tuple[str, str | None, int | None]:
    """(kind, file id, file size) of a non-text message; an image sent as a file is a photo."""
    if message.photo:
        largest = message.photo[-1]
        return "photo", largest.file_id, largest.file_size
    for kind in _FILE_KINDS:
        item = getattr(message, kind, None)
        if item is None:
            continue
        mime = getattr(item, "mime_type", None) or ""
        if kind == "document" and mime.startswith("image/"):
            return "photo", item.file_id, item.file_size
        return kind, item.file_id, getattr(item, "file_size", None)
    for kind in _OTHER_KINDS:
        if getattr(message, kind, None) is not None:
            return kind, None, None
    return "other", None, None


def readable(text: str | None) -> str:
    """A patient's text as it is saved: without U+0000, which PostgreSQL cannot store in a text
    column (a client can send it; the fuzz test did), and which no one types on purpose."""
    return (text or "").replace("\x00", "")


async def apologise_for(ctx: ServiceContext, update: Update) -> None:
    """A bug must not look like silence to a patient: once the intake gives up on their update
    (intake.py), apologise and give the unit's number."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return
    user = update.effective_user
    language = conversation.guess_language(ctx, user.language_code if user else None)
    await conversation.apologise(ctx, chat_id=chat.id, language=language)


class ButtonService(Protocol):
    """A service that answers a patient's button press (answers, or command confirmations)."""

    async def __call__(
        self,
        ctx: ServiceContext,
        *,
        chat_id: int,
        data: str,
        update_id: int | None,
        message_id: int | None,
        language_code: str | None = None,
    ) -> Reply:
        """Handle the press and say what to show in the toast."""
        ...


class PatientHandlers:
    """Handlers for patients' private chats with the bot."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def register(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add the patient handlers to group 0 (after the staff ones, see the module doc)."""
        private = filters.ChatType.PRIVATE
        application.add_handler(CommandHandler("start", self.on_start, filters=private))
        application.add_handler(
            CommandHandler(list(patient_commands.COMMANDS), self.on_command, filters=private)
        )
        application.add_handler(CallbackQueryHandler(self.on_command_button, pattern=r"^[xel]:"))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(
            MessageHandler(
                private & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND,
                self.on_text,
            )
        )
        application.add_handler(
            MessageHandler(
                private & filters.UpdateType.EDITED_MESSAGE & ~filters.COMMAND, self.on_edit
            )
        )
        application.add_handler(
            MessageHandler(
                private & filters.UpdateType.MESSAGE & ~filters.TEXT & ~filters.StatusUpdate.ALL,
                self.on_media,
            )
        )
        application.add_handler(MessageHandler(private & filters.COMMAND, self.on_unknown_command))

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/start [token]``: enrol with the deep link's token, or say where we are."""
        assert update.effective_chat is not None
        user = update.effective_user
        await conversation.handle_start(
            self._ctx,
            chat_id=update.effective_chat.id,
            token=context.args[0] if context.args else None,
            update_id=update.update_id,
            language_code=user.language_code if user else None,
        )

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help, /next, /language, /stop, /mydata, /delete."""
        message = update.effective_message
        assert message is not None and update.effective_chat is not None
        await self._command(update, _command_name(message.text or ""))

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command the bot does not have: say so and show the help."""
        await self._command(update, "unknown")

    async def _command(self, update: Update, command: str) -> None:
        assert update.effective_chat is not None
        user = update.effective_user
        await patient_commands.handle_command(
            self._ctx,
            chat_id=update.effective_chat.id,
            command=command,
            update_id=update.update_id,
            language_code=user.language_code if user else None,
        )

    async def on_command_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Confirm /stop or /delete, choose a language."""
        await self._button(update, patient_commands.handle_button)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An answer button (or a stale, forged or unknown one: refused politely)."""
        await self._button(update, conversation.handle_button)

    async def _button(self, update: Update, handle: ButtonService) -> None:
        """Hand a button press to ``handle`` and answer the query with its toast."""
        query = update.callback_query
        assert query is not None
        if update.effective_chat is None:  # an inline-mode message: none of ours
            await _answer_query(query, None)
            return
        reply = await handle(
            self._ctx,
            chat_id=update.effective_chat.id,
            data=query.data or "",
            update_id=update.update_id,
            message_id=query.message.message_id if query.message else None,
            language_code=query.from_user.language_code,
        )
        await _answer_query(query, reply.toast)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A typed message."""
        message = update.effective_message
        assert message is not None and update.effective_chat is not None
        user = update.effective_user
        await conversation.handle_text(
            self._ctx,
            chat_id=update.effective_chat.id,
            text=readable(message.text),
            update_id=update.update_id,
            message_id=message.message_id,
            language_code=user.language_code if user else None,
        )

    async def on_edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An edited message: a correction of an answer or a note (see the module doc)."""
        message = update.effective_message
        assert message is not None and update.effective_chat is not None
        user = update.effective_user
        text = readable(message.text or message.caption)
        if text:
            await conversation.handle_edit(
                self._ctx,
                chat_id=update.effective_chat.id,
                text=text,
                update_id=update.update_id,
                message_id=message.message_id,
                language_code=user.language_code if user else None,
            )
        elif message.location is None:
            await self.on_media(update, context)

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Photos, voice notes, videos, stickers, documents, locations, contacts, polls..."""
        message = update.effective_message
        assert message is not None and update.effective_chat is not None
        user = update.effective_user
        kind, file_id, file_size = media_of(message)
        await conversation.handle_media(
            self._ctx,
            chat_id=update.effective_chat.id,
            kind=kind,
            update_id=update.update_id,
            message_id=message.message_id,
            file_id=file_id,
            file_size=file_size,
            caption=readable(message.caption) or None,
            language_code=user.language_code if user else None,
        )


async def _answer_query(query: CallbackQuery, toast: str | None) -> None:
    """Stop the button's spinner. A press delivered twice, or answered too late, cannot be
    answered again (400 "query is too old"): the press itself was handled, so that is fine."""
    try:
        await query.answer(toast)
    except TelegramError as exc:
        log.info("callback_answer_failed", error=type(exc).__name__)


def _command_name(text: str) -> str:
    """``/Help@my_bot extra`` → ``help``."""
    return text.split()[0].lstrip("/").split("@")[0].lower() if text.strip() else ""


async def publish_commands(bot: Bot, ctx: ServiceContext) -> None:
    """The patient command menu (setMyCommands) for private chats, in every language we speak,
    plus a default list for other Telegram languages. A failure is logged, not fatal."""
    languages = conversation.interface_languages(conversation.default_protocol(ctx))
    default = conversation.guess_language(ctx, None)
    scope = BotCommandScopeAllPrivateChats()
    try:
        for language in [*languages, None]:
            commands = [
                BotCommand(name, description)
                for name, description in patient_commands.command_descriptions(language or default)
            ]
            await bot.set_my_commands(commands, scope=scope, language_code=language)
    except TelegramError as exc:
        log.warning("set_my_commands_failed", error=type(exc).__name__)
