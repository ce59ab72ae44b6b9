"""The :class:`~bot.services.ports.Messenger` port over python-telegram-bot's ``Bot``.

Maps Bot API failures onto the port's small exception tree, so services decide without knowing
Telegram: ``Forbidden`` → blocked, ``BadRequest: chat not found`` → chat not found, ``RetryAfter``,
``TimedOut``, ``NetworkError`` → temporary.
"""

from __future__ import annotations

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.services.ports import (
    ChatNotFound,
    DeliveryError,
    OutgoingMessage,
    RecipientBlocked,
    SentRef,
    TemporaryFailure,
)


def keyboard(message: OutgoingMessage) -> InlineKeyboardMarkup | None:
    """The inline keyboard of a message, or None."""
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
            for row in message.buttons
        ]
    )


def _translate(exc: TelegramError) -> DeliveryError:
    if isinstance(exc, RetryAfter):
        retry = exc.retry_after
        seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
        return TemporaryFailure("retry_after", retry_after=seconds)
    if isinstance(exc, Forbidden):
        return RecipientBlocked("forbidden")
    if isinstance(exc, BadRequest):
        if "chat not found" in exc.message.lower():
            return ChatNotFound("chat_not_found")
        return DeliveryError("bad_request")
    if isinstance(exc, NetworkError):
        return TemporaryFailure("network")
    return DeliveryError("telegram_error")


class TelegramMessenger:
    """Send and edit through a PTB ``Bot`` (its rate limiter applies when configured)."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, chat_id: int, message: OutgoingMessage) -> SentRef:
        """Send text, a photo (bytes, or a file id Telegram has) or a document."""
        markup = keyboard(message)
        reply = (
            ReplyParameters(message.reply_to, allow_sending_without_reply=True)
            if message.reply_to is not None
            else None
        )
        try:
            photo = message.photo if message.photo is not None else message.photo_id
            if photo is not None:
                sent = await self._bot.send_photo(
                    chat_id,
                    photo,
                    caption=message.text or None,
                    reply_markup=markup,
                    reply_parameters=reply,
                )
            elif message.document is not None:
                sent = await self._bot.send_document(
                    chat_id,
                    message.document,
                    filename=message.file_name,
                    caption=message.text or None,
                    reply_markup=markup,
                    reply_parameters=reply,
                )
            else:
                sent = await self._bot.send_message(
                    chat_id, message.text, reply_markup=markup, reply_parameters=reply
                )
        except TelegramError as exc:
            raise _translate(exc) from exc
        return SentRef(sent.chat_id, sent.message_id)

    async def edit(self, ref: SentRef, message: OutgoingMessage) -> None:
        """Edit a message's text and keyboard; 'not modified' is not an error."""
        try:
            await self._bot.edit_message_text(
                message.text,
                chat_id=ref.chat_id,
                message_id=ref.message_id,
                reply_markup=keyboard(message),
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            raise _translate(exc) from exc
        except TelegramError as exc:
            raise _translate(exc) from exc

    async def forward(self, chat_id: int, from_chat_id: int, message_id: int) -> SentRef:
        """Forward a patient's message to staff."""
        try:
            sent = await self._bot.forward_message(chat_id, from_chat_id, message_id)
        except TelegramError as exc:
            raise _translate(exc) from exc
        return SentRef(sent.chat_id, sent.message_id)

    async def download(self, file_id: str) -> bytes:
        """Fetch a file through getFile and the Bot API's file download URL."""
        try:
            file = await self._bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise _translate(exc) from exc
