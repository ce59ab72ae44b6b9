"""What the fake Telegram knows: the bot, its users and chats, every message of every chat, what
the bot sent (kept current through edits) and the callback queries waiting for an answer."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from bot.sandbox.fake_api.files import StoredFile
from bot.sandbox.fake_api.wire import (
    ApiError,
    JSONDict,
    Params,
    as_int,
    blocked,
    chat_not_found,
)


@dataclass
class SentMessage:
    """A message the bot sent, kept up to date with later edits so tests read its current state."""

    chat_id: int
    message_id: int
    kind: str  # "text" | "photo" | "document" | "forward" | "copy"
    text: str | None  # text, or caption for media
    reply_markup: JSONDict | None
    edits: int = 0
    date: int = 0
    file_bytes: bytes | None = None
    file_name: str | None = None
    deleted: bool = False
    parse_mode: str | None = None
    #: The message of the same chat this one replies to (reply_parameters), if any.
    reply_to_message_id: int | None = None

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of every inline button, rows flattened; "" if not a callback."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard") or []
        return [
            (str(btn.get("text", "")), str(btn.get("callback_data", "")))
            for row in rows
            for btn in row
        ]

    def button_data(self, label_substring: str) -> str:
        """Callback data of the first callback button whose label contains the substring."""
        for label, data in self.buttons():
            if label_substring in label and data:
                return data
        labels = [label for label, _ in self.buttons()]
        raise LookupError(
            f"no inline button containing {label_substring!r} in message "
            f"{self.chat_id}/{self.message_id}; buttons: {labels}"
        )

    def to_json(self) -> JSONDict:
        """JSON form for the control API (bytes as base64)."""
        return {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "kind": self.kind,
            "text": self.text,
            "reply_markup": self.reply_markup,
            "edits": self.edits,
            "date": self.date,
            "file_bytes_b64": (
                base64.b64encode(self.file_bytes).decode() if self.file_bytes is not None else None
            ),
            "file_name": self.file_name,
            "deleted": self.deleted,
            "parse_mode": self.parse_mode,
            "reply_to_message_id": self.reply_to_message_id,
        }

    def describe(self) -> str:
        """One line for timeout diagnostics."""
        extra = f" buttons={[label for label, _ in self.buttons()]}" if self.buttons() else ""
        gone = " (deleted)" if self.deleted else ""
        return (
            f"chat={self.chat_id} id={self.message_id} {self.kind}{gone} "
            f"edits={self.edits} text={self.text!r}{extra}"
        )


@dataclass
class Msg:
    """A message of a chat, from a user or from the bot."""

    data: JSONDict  # the Message object as it is now; edits replace top-level keys only
    from_bot: bool
    sender_id: int
    sent: SentMessage | None = None
    file: StoredFile | None = None

    def quoted(self) -> JSONDict:
        """The message as ``reply_to_message`` of another: Telegram does not nest replies."""
        snapshot = dict(self.data)
        snapshot.pop("reply_to_message", None)
        return snapshot


class World:
    """Users, chats and messages; every change to a bot message is announced to ``on_change``.

    ``on_change`` is the server's hook (a subclass may watch it) and must end in
    :meth:`record_change`, which wakes whoever waits for the bot's messages.
    """

    def __init__(self, *, bot_user: JSONDict, on_change: Callable[[SentMessage], None]) -> None:
        self.bot_user = bot_user
        self.on_change = on_change
        self.users: dict[int, JSONDict] = {}
        self.chats: dict[int, JSONDict] = {}
        self.blocked: set[int] = set()
        #: The bot's standing in a group when it is not a plain member: "restricted" (may not
        #: send), "left" (removed) or "kicked" (banned).
        self.bot_standing: dict[int, str] = {}
        #: Basic groups upgraded to a supergroup: old id → the supergroup's id.
        self.migrated_to: dict[int, int] = {}
        self.messages: dict[tuple[int, int], Msg] = {}
        self.sent: list[SentMessage] = []
        self.sent_by_chat: dict[int, list[SentMessage]] = {}
        self.changes: list[SentMessage] = []
        self.change_signal = asyncio.Event()
        self.callback_counter = itertools.count(4_000_000_000_000_000_001)
        self.open_callbacks: set[str] = set()
        self.callback_answers: list[JSONDict] = []
        self._next_message_id: dict[int, int] = {}

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    def reset_signal(self) -> None:
        """A fresh event, bound to the loop the server (re)starts in."""
        self.change_signal = asyncio.Event()

    def alloc_message_id(self, chat_id: int) -> int:
        """Message ids count up per chat, from 1."""
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def record_sent(self, message: SentMessage) -> None:
        self.sent.append(message)
        self.sent_by_chat.setdefault(message.chat_id, []).append(message)
        self.on_change(message)

    def record_change(self, message: SentMessage) -> None:
        self.changes.append(message)
        signal_, self.change_signal = self.change_signal, asyncio.Event()
        signal_.set()

    def chat_param(self, params: Params, name: str = "chat_id") -> int:
        """The chat a Bot API call names; unknown chats are "chat not found", as on Telegram."""
        raw = params.get(name)
        if raw is None or raw == "":
            raise ApiError(400, f"Bad Request: {name} is empty")
        try:
            chat_id = as_int(raw, name)
        except ApiError:
            raise chat_not_found() from None
        if chat_id not in self.chats:
            raise chat_not_found()
        return chat_id

    def writable_chat(self, params: Params) -> int:
        """The chat of a call that writes to it: a user who blocked the bot answers 403, so
        does a group the bot was removed from; a group where it may not send answers 400."""
        chat_id = self.chat_param(params)
        if chat_id in self.blocked:
            raise blocked()
        self.check_member(chat_id)
        if self.bot_standing.get(chat_id) == "restricted":
            raise ApiError(400, "Bad Request: not enough rights to send text messages to the chat")
        return chat_id

    def check_member(self, chat_id: int) -> None:
        """Telegram answers 403 to a bot that is no longer in the group, and 400 with the new id
        for a group that became a supergroup."""
        migrated = self.migrated_to.get(chat_id)
        if migrated is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=migrated,
            )
        standing = self.bot_standing.get(chat_id)
        kind = self.chats[chat_id].get("type", "group")
        if standing == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        if standing == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")
