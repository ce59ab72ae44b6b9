"""The :class:`~bot.services.ports.Messenger` port over python-telegram-bot's ``Bot``.

Maps Bot API failures onto the port's small exception tree, so services decide without knowing
Telegram: ``Forbidden`` → blocked (a patient's private chat) or chat lost (a group: the bot was
removed), ``ChatMigrated`` and "not enough rights" → chat lost, ``BadRequest: chat not found`` →
chat not found, ``RetryAfter``, ``TimedOut``, ``NetworkError`` → temporary.
"""

from __future__ import annotations

import json
import warnings

from telegram import Bot, Chat, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBUserWarning

from bot.services.ports import (
    Button,
    ChatLost,
    ChatNotFound,
    DeliveryError,
    OutgoingMessage,
    RecipientBlocked,
    SentRef,
    TemporaryFailure,
)
from bot.telegram.chat_rights import cannot_post
from bot.telegram.urgency import AskedQuestions

#: Stands for the check-in id in a cached keyboard (never in a label or button data).
_ROW_ID = "\u0000"
_ROW_ID_JSON = json.dumps(_ROW_ID)[1:-1]
#: Keyboards kept (one per question, language and protocol version in use: a few hundred).
_KEYBOARDS_KEPT = 2048
_keyboards: dict[tuple[tuple[tuple[str, str], ...], ...], str] = {}


def keyboard_json(message: OutgoingMessage) -> str | None:
    """The message's inline keyboard as the Bot API's JSON, or None.

    A question's keyboard differs between check-ins only by the check-in id in its button data
    (``a:<checkin>:<q>:<v>``, see ``bot/services/questions.py``): it is serialised once per
    question, language and protocol version and the id filled in, instead of building eleven
    python-telegram-bot button objects for every message of a wave."""
    if not message.buttons:
        return None
    ids = {b.data.split(":")[1] for row in message.buttons for b in row if b.data.count(":") >= 2}
    row_id = next(iter(ids)) if len(ids) == 1 else None
    if row_id is None or not row_id.isdigit():
        return json.dumps(_markup(message.buttons), ensure_ascii=False)
    prefix, marked = f":{row_id}:", f":{_ROW_ID}:"
    key = tuple(
        tuple((b.label, b.data.replace(prefix, marked, 1)) for b in row) for row in message.buttons
    )
    template = _keyboards.get(key)
    if template is None:
        if len(_keyboards) >= _KEYBOARDS_KEPT:
            _keyboards.clear()
        rows = tuple(tuple(Button(label, data) for label, data in row) for row in key)
        template = json.dumps(_markup(rows), ensure_ascii=False)
        _keyboards[key] = template
    return template.replace(_ROW_ID_JSON, row_id)


def _markup(rows: tuple[tuple[Button, ...], ...]) -> dict[str, object]:
    return {
        "inline_keyboard": [
            [{"text": b.label, "callback_data": b.data} for b in row] for row in rows
        ]
    }


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


def _translate(exc: TelegramError, chat_id: int | None = None) -> DeliveryError:
    """The port's exception for a Bot API failure; ``chat_id`` tells a group (negative id)
    from a patient's private chat, where a 403 means the patient blocked the bot."""
    if isinstance(exc, RetryAfter):
        retry = exc.retry_after
        seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
        return TemporaryFailure("retry_after", retry_after=seconds)
    if isinstance(exc, ChatMigrated):
        return ChatLost("migrated", new_chat_id=int(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        if chat_id is not None and chat_id < 0:
            return ChatLost("removed")
        return RecipientBlocked("forbidden")
    if isinstance(exc, BadRequest):
        message = exc.message.lower()
        if "chat not found" in message:
            return ChatNotFound("chat_not_found")
        if "not enough rights" in message:
            return ChatLost("restricted")
        return DeliveryError("bad_request")
    if isinstance(exc, NetworkError):
        return TemporaryFailure("network")
    return DeliveryError("telegram_error")


class TelegramMessenger:
    """Send and edit through a PTB ``Bot`` (its rate limiter applies when configured).

    Each question sent is remembered as the chat's open question (:class:`AskedQuestions`),
    for the intake to read an urgent answer as it arrives (``urgency.py``)."""

    def __init__(self, bot: Bot, asked: AskedQuestions | None = None) -> None:
        self._bot = bot
        self.asked = asked or AskedQuestions()

    async def send(self, chat_id: int, message: OutgoingMessage) -> SentRef:
        """Send text, a photo (bytes, or a file id Telegram has) or a document."""
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
                    reply_markup=keyboard(message),
                    reply_parameters=reply,
                )
            elif message.document is not None:
                sent = await self._bot.send_document(
                    chat_id,
                    message.document,
                    filename=message.file_name,
                    caption=message.text or None,
                    reply_markup=keyboard(message),
                    reply_parameters=reply,
                )
            else:
                return self._asked(chat_id, message, await self._send_text(chat_id, message))
        except TelegramError as exc:
            raise _translate(exc, chat_id) from exc
        return self._asked(chat_id, message, SentRef(sent.chat_id, sent.message_id))

    def _asked(self, chat_id: int, message: OutgoingMessage, ref: SentRef) -> SentRef:
        if message.question_id is not None:
            self.asked.asked(chat_id, message.question_id)
        return ref

    async def _send_text(self, chat_id: int, message: OutgoingMessage) -> SentRef:
        """sendMessage with the keyboard as cached JSON, reading only the ids of the answer.

        Not ``Bot.send_message``: it builds a ``Message`` object from Telegram's answer (with
        its keyboard: the user, the chat, every button) only for us to read two numbers; that
        was 15 % of the time of a dispatch wave. The request is the same (``do_api_request``
        goes through the same rate limiter and HTTP session)."""
        data: dict[str, object] = {"chat_id": chat_id, "text": message.text}
        markup_json = keyboard_json(message)
        if markup_json:
            data["reply_markup"] = markup_json
        if message.reply_to is not None:
            data["reply_parameters"] = json.dumps(
                {"message_id": message.reply_to, "allow_sending_without_reply": True}
            )
        with warnings.catch_warnings():  # do_api_request on purpose (above)
            warnings.filterwarnings("ignore", message="Please use 'Bot.", category=PTBUserWarning)
            result = await self._bot.do_api_request("sendMessage", api_kwargs=data)
        if not isinstance(result, dict):
            raise TelegramError("sendMessage returned no message")
        chat = result.get("chat")
        sent_chat = chat.get("id") if isinstance(chat, dict) else None
        message_id = result.get("message_id")
        if not isinstance(message_id, int):
            raise TelegramError("sendMessage returned no message id")
        return SentRef(sent_chat if isinstance(sent_chat, int) else chat_id, message_id)

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
            raise _translate(exc, ref.chat_id) from exc
        except TelegramError as exc:
            raise _translate(exc, ref.chat_id) from exc

    async def forward(self, chat_id: int, from_chat_id: int, message_id: int) -> SentRef:
        """Forward a patient's message to staff."""
        try:
            sent = await self._bot.forward_message(chat_id, from_chat_id, message_id)
        except TelegramError as exc:
            raise _translate(exc, chat_id) from exc
        return SentRef(sent.chat_id, sent.message_id)

    async def download(self, file_id: str) -> bytes:
        """Fetch a file through getFile and the Bot API's file download URL."""
        try:
            file = await self._bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise _translate(exc) from exc

    async def check_chat(self, chat_id: int) -> None:
        """getChat, then getChatMember for the bot: may it post there (see the port)?"""
        try:
            chat = await self._bot.get_chat(chat_id)
            if chat.type == Chat.PRIVATE:
                return
            member = await self._bot.get_chat_member(chat_id, self._bot.id)
        except TelegramError as exc:
            raise _translate(exc, chat_id) from exc
        refusal = cannot_post(chat, member)
        if refusal is not None:
            raise ChatLost(refusal[0])
