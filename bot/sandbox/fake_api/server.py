"""A fake Telegram Bot API server on loopback.

Tests, the demo sandbox and the benchmarks point python-telegram-bot at this server exactly as
they would point it at a self-hosted Bot API server, so the whole stack (HTTP client, JSON,
timeouts, retries, polling and webhooks) is exercised without reaching Telegram. The server also
acts as the users (text, button presses, media, edits, blocking the bot), records what the bot
sent, enforces Telegram's flood limits on request and injects faults (429, 5xx, 403, lost
connections).

Usage::

    server = FakeTelegramServer()
    await server.start()
    app = (
        Application.builder()
        .token(server.bot_token)
        .base_url(server.api_base_url)
        .base_file_url(server.file_base_url)
        .build()
    )

Everything runs on one event loop; the acting-as-user methods are synchronous and must be called
from that loop's thread. Other processes use the HTTP control side under ``/_control/``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
from aiohttp import web

from bot.sandbox.fake_api.faults import FAULT_KINDS, Fault, FaultInjector
from bot.sandbox.fake_api.files import (
    TINY_MP4,
    TINY_OGG,
    TINY_PNG,
    TINY_WEBP,
    FileStore,
    StoredFile,
    document_json,
    photo_sizes,
)
from bot.sandbox.fake_api.limits import FloodLimiter
from bot.sandbox.fake_api.wire import (
    SENDING_LOWER,
    SENDING_METHODS,
    ApiError,
    Handler,
    JSONDict,
    Params,
    Upload,
    as_bool,
    as_float,
    as_int,
    as_json,
    blocked,
    chat_not_found,
    command_entities,
    error_response,
    json_response,
    now,
    opt_str,
)

__all__ = [
    "FAULT_KINDS",
    "SENDING_METHODS",
    "TINY_PNG",
    "FakeTelegramServer",
    "SentMessage",
]

logger = logging.getLogger(__name__)

_INLINE_ACTIONS: Final = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_CONTENT_KEYS: Final = (
    "text",
    "entities",
    "photo",
    "document",
    "voice",
    "video",
    "sticker",
    "location",
    "caption",
    "caption_entities",
)
_CONTROL_METHODS: Final = frozenset(
    {
        "add_user",
        "add_group",
        "send_text",
        "press_button",
        "send_photo",
        "send_voice",
        "send_video",
        "send_sticker",
        "send_document",
        "send_location",
        "edit_text",
        "redeliver",
        "block_bot",
        "unblock_bot",
        "inject_fault",
        "clear_faults",
    }
)
_MAX_TEXT: Final = 4096
_MAX_CAPTION: Final = 1024
_MAX_CALLBACK_DATA: Final = 64
_NO_RESPONSE: Final = 0  # status recorded in request_log when the connection was closed


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
class _Msg:
    data: JSONDict  # the Message object as it is now; edits replace top-level keys only
    from_bot: bool
    sender_id: int
    sent: SentMessage | None = None
    file: StoredFile | None = None


@dataclass
class _Pending:
    update_id: int
    update: JSONDict
    kind: str
    redelivery: bool = False
    delivered: bool = False


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class FakeTelegramServer:
    """Loopback HTTP server speaking the subset of the Bot API that the bot uses."""

    #: Burst allowed per private chat before the 1 msg/s limit bites.
    PRIVATE_BURST: float = 3.0
    PRIVATE_RATE: float = 1.0
    GROUP_BURST: float = 20.0
    GROUP_RATE: float = 20.0 / 60.0
    GLOBAL_BURST: float = 30.0
    GLOBAL_RATE: float = 30.0

    def __init__(
        self,
        *,
        bot_token: str = "123456:TEST",  # noqa: S107 - a fake token for a fake server
        bot_username: str = "cryo_followup_bot",
        bot_id: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.bot_token = bot_token
        self.bot_username = bot_username
        if bot_id is None:
            head = bot_token.split(":", 1)[0]
            bot_id = int(head) if head.isdigit() else 123456
        self.bot_id = bot_id
        self.host = host
        self.port = port
        self.bot_first_name = "Cryo Follow-up"

        # Public, settable knobs and records.
        self.latency: float = 0.0
        self.enforce_limits: bool = False
        self.fault_timeout_delay: float = 30.0  # how long a "timeout" fault stalls
        self.webhook_retry_delay: float = 0.05  # first retry delay, doubled up to 1 s
        self.webhook_timeout: float = 10.0
        self.callback_answers: list[JSONDict] = []
        self.request_log: list[tuple[str, int]] = []
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.menu_buttons: dict[int | None, JSONDict] = {}

        self._bot_user: JSONDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": bot_username,
        }
        self._users: dict[int, JSONDict] = {}
        self._chats: dict[int, JSONDict] = {}
        self._blocked: set[int] = set()
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], _Msg] = {}
        self._sent: list[SentMessage] = []
        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._changes: list[SentMessage] = []
        self._change_signal = asyncio.Event()
        self._files = FileStore()
        self._callback_counter = itertools.count(4_000_000_000_000_000_001)
        self._open_callbacks: set[str] = set()

        self._next_update_id = 1
        self._all_updates: dict[int, _Pending] = {}
        self._pending: deque[_Pending] = deque()
        self._update_signal = asyncio.Event()
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._webhook: _Webhook | None = None
        self._webhook_deliveries = 0

        self._faults = FaultInjector()
        self._limiter = FloodLimiter(rates=self)
        self._status_counts: Counter[int] = Counter()
        self._method_counts: Counter[str] = Counter()

        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._m_get_me,
                "logOut": self._m_true,
                "close": self._m_true,
                "getUpdates": self._m_get_updates,
                "setWebhook": self._m_set_webhook,
                "deleteWebhook": self._m_delete_webhook,
                "getWebhookInfo": self._m_get_webhook_info,
                "sendMessage": self._m_send_message,
                "editMessageText": self._m_edit_message_text,
                "editMessageCaption": self._m_edit_message_caption,
                "editMessageReplyMarkup": self._m_edit_message_reply_markup,
                "deleteMessage": self._m_delete_message,
                "answerCallbackQuery": self._m_answer_callback_query,
                "sendPhoto": self._m_send_photo,
                "sendDocument": self._m_send_document,
                "getFile": self._m_get_file,
                "forwardMessage": self._m_forward_message,
                "copyMessage": self._m_copy_message,
                "setMyCommands": self._m_set_my_commands,
                "getMyCommands": self._m_get_my_commands,
                "deleteMyCommands": self._m_delete_my_commands,
                "setChatMenuButton": self._m_set_chat_menu_button,
                "getChatMenuButton": self._m_get_chat_menu_button,
                "setMyDescription": self._m_true,
                "setMyShortDescription": self._m_true,
                "setMyName": self._m_true,
                "getChat": self._m_get_chat,
                "sendChatAction": self._m_send_chat_action,
            }.items()
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the loopback socket (port 0 picks a free one) and start serving."""
        if self._runner is not None:
            raise RuntimeError("server already started")
        # Fresh events bind to the running loop, so a server can be restarted in a new loop.
        self._stopping = asyncio.Event()
        self._update_signal = asyncio.Event()
        self._change_signal = asyncio.Event()
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        app.router.add_post("/_control/{action}", self._handle_control_post)
        app.router.add_get("/_control/{action}", self._handle_control_get)
        # handler_cancellation: a client that gives up (PTB stopping its poller, a client-side
        # timeout) cancels its handler, as a real server would forget the request.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        logger.debug("fake Telegram Bot API listening on %s", self.url)

    async def stop(self) -> None:
        """Wake long polls, stop webhook delivery and close the server."""
        self._stopping.set()
        self._notify_updates()
        if self._webhook is not None:
            await self._stop_webhook_task(self._webhook)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeTelegramServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        """What PTB's ``base_url`` takes (PTB appends the token)."""
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        """What PTB's ``base_file_url`` takes (PTB appends the token)."""
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------------ acting as users

    def add_user(
        self,
        user_id: int,
        *,
        first_name: str = "Test",
        language_code: str | None = "fr",
        username: str | None = None,
        last_name: str | None = None,
    ) -> None:
        """Make a user (and their private chat with the bot) known, so the bot can write to it."""
        if user_id <= 0:
            raise ValueError(f"user ids are positive, got {user_id}")
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat: JSONDict = {"id": user_id, "type": "private", "first_name": first_name}
        if last_name is not None:
            user["last_name"] = chat["last_name"] = last_name
        if username is not None:
            user["username"] = chat["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        self._users[user_id] = user
        self._chats[user_id] = chat

    def add_group(self, chat_id: int, *, title: str = "Staff", type_: str = "supergroup") -> None:
        """Make a group the bot is a member of (negative id; supergroups use ``-100...``)."""
        if chat_id >= 0:
            raise ValueError(f"group ids are negative, got {chat_id}")
        if type_ not in {"group", "supergroup"}:
            raise ValueError(f"group type must be 'group' or 'supergroup', got {type_!r}")
        self._chats[chat_id] = {"id": chat_id, "type": type_, "title": title}

    def send_text(
        self, user_id: int, text: str, *, chat_id: int | None = None, reply_to: int | None = None
    ) -> JSONDict:
        """The user sends text; a leading ``/command`` gets its bot_command entity.

        ``reply_to`` makes it a reply to that message of the chat (as swiping on it does).
        """
        content: JSONDict = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        if reply_to is not None:
            target = self._messages.get((self._ensure_chat(user_id, chat_id), reply_to))
            if target is None:
                raise ValueError(f"no message {reply_to} to reply to")
            snapshot = dict(target.data)
            snapshot.pop("reply_to_message", None)
            content["reply_to_message"] = snapshot
        return self._user_sends(user_id, chat_id, content)

    def press_button(
        self, user_id: int, message_id: int, data: str, *, chat_id: int | None = None
    ) -> JSONDict:
        """The user presses an inline button of a bot message (any data, to allow stale presses)."""
        user = self._ensure_user(user_id)
        cid = self._ensure_chat(user_id, chat_id)
        msg = self._messages.get((cid, message_id))
        if msg is None or not msg.from_bot:
            raise ValueError(f"no bot message {message_id} in chat {cid}")
        query_id = str(next(self._callback_counter))
        self._open_callbacks.add(query_id)
        query: JSONDict = {
            "id": query_id,
            "from": user,
            "message": dict(msg.data),
            "chat_instance": str(abs(cid) * 7919 + 17),
            "data": data,
        }
        return self._queue_update("callback_query", query)

    def send_photo(
        self,
        user_id: int,
        *,
        file_bytes: bytes = TINY_PNG,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> JSONDict:
        """The user sends a photo; its bytes are retrievable with getFile + download."""
        stored = self._files.register(file_bytes, "photos", "jpg", None, "image/jpeg")
        content: JSONDict = {"photo": photo_sizes(stored)}
        if caption is not None:
            content["caption"] = caption
        return self._user_sends(user_id, chat_id, content)

    def send_voice(
        self, user_id: int, *, duration: int = 3, chat_id: int | None = None
    ) -> JSONDict:
        """The user sends a voice note (a few OGG bytes, retrievable)."""
        stored = self._files.register(TINY_OGG, "voice", "oga", None, "audio/ogg")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": stored.size,
        }
        return self._user_sends(user_id, chat_id, {"voice": voice})

    def send_video(self, user_id: int, *, chat_id: int | None = None) -> JSONDict:
        """The user sends a short video."""
        stored = self._files.register(TINY_MP4, "videos", "mp4", "video.mp4", "video/mp4")
        video = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": 640,
            "height": 360,
            "duration": 2,
            "mime_type": "video/mp4",
            "file_size": stored.size,
        }
        return self._user_sends(user_id, chat_id, {"video": video})

    def send_sticker(
        self, user_id: int, *, emoji: str = "👍", chat_id: int | None = None
    ) -> JSONDict:
        """The user sends a sticker."""
        stored = self._files.register(TINY_WEBP, "stickers", "webp", None, "image/webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": stored.size,
        }
        return self._user_sends(user_id, chat_id, {"sticker": sticker})

    def send_document(
        self,
        user_id: int,
        *,
        file_name: str = "doc.pdf",
        file_bytes: bytes = b"%PDF-1.4",
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> JSONDict:
        """The user sends a document; its bytes are retrievable with getFile + download."""
        mime = "application/pdf" if file_name.lower().endswith(".pdf") else None
        ext = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = self._files.register(file_bytes, "documents", ext, file_name, mime)
        content: JSONDict = {"document": document_json(stored)}
        if caption is not None:
            content["caption"] = caption
        return self._user_sends(user_id, chat_id, content)

    def send_location(
        self,
        user_id: int,
        *,
        latitude: float = 48.85,
        longitude: float = 2.35,
        chat_id: int | None = None,
    ) -> JSONDict:
        """The user shares a location."""
        location = {"latitude": latitude, "longitude": longitude}
        return self._user_sends(user_id, chat_id, {"location": location})

    def send_content(
        self, user_id: int, content: JSONDict, *, chat_id: int | None = None
    ) -> JSONDict:
        """The user sends any other kind of message, given as Bot API fields (a contact, a
        poll, a dice, a video note...): what clients can send outruns the helpers above."""
        return self._user_sends(user_id, chat_id, dict(content))

    def edit_text(
        self, user_id: int, message_id: int, new_text: str, *, chat_id: int | None = None
    ) -> JSONDict:
        """The user edits one of their text messages (an ``edited_message`` update)."""
        self._ensure_user(user_id)
        cid = self._ensure_chat(user_id, chat_id)
        msg = self._messages.get((cid, message_id))
        if msg is None or msg.from_bot or msg.sender_id != user_id or "text" not in msg.data:
            raise ValueError(f"user {user_id} has no text message {message_id} in chat {cid}")
        msg.data["text"] = new_text
        entities = command_entities(new_text)
        if entities:
            msg.data["entities"] = entities
        else:
            msg.data.pop("entities", None)
        msg.data["edit_date"] = now()
        return self._queue_update("edited_message", dict(msg.data))

    def redeliver(self, update_id: int) -> JSONDict:
        """Queue an update again with the same update_id, as Telegram does after a lost answer."""
        original = self._all_updates.get(update_id)
        if original is None:
            raise ValueError(f"unknown update_id {update_id}")
        self._pending.append(_Pending(update_id, original.update, original.kind, redelivery=True))
        self._notify_updates()
        return original.update

    def block_bot(self, user_id: int) -> None:
        """From now on sending to this user's private chat fails with 403."""
        self._ensure_user(user_id)
        self._blocked.add(user_id)

    def unblock_bot(self, user_id: int) -> None:
        """Undo :meth:`block_bot` (a user writing to the bot unblocks it too)."""
        self._blocked.discard(user_id)

    # ------------------------------------------------------------------ reading what the bot did

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """Messages the bot sent, in order, in their current state (edits applied)."""
        if chat_id is None:
            return list(self._sent)
        return list(self._sent_by_chat.get(chat_id, ()))

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - public API; used with asyncio.timeout inside
    ) -> SentMessage:
        """First sent message (already sent, or sent or edited later) that matches."""
        for message in self._sent:
            if predicate(message):
                return message
        cursor = len(self._changes)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    signal_ = self._change_signal
                    while cursor < len(self._changes):
                        message = self._changes[cursor]
                        cursor += 1
                        if predicate(message):
                            return message
                    await signal_.wait()
        except TimeoutError:
            raise TimeoutError(
                f"no sent message matched within {timeout} s; {self._describe_sent()}"
            ) from None

    async def wait_for_count(
        self,
        n: int,
        *,
        chat_id: int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - public API; used with asyncio.timeout inside
    ) -> list[SentMessage]:
        """Wait until at least ``n`` messages were sent (to ``chat_id``); return the first ``n``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    signal_ = self._change_signal
                    messages = self._sent if chat_id is None else self._sent_by_chat.get(chat_id)
                    if messages is not None and len(messages) >= n:
                        return list(messages[:n])
                    await signal_.wait()
        except TimeoutError:
            where = "in total" if chat_id is None else f"to chat {chat_id}"
            raise TimeoutError(
                f"expected {n} sent messages {where} within {timeout} s; {self._describe_sent()}"
            ) from None

    def stats(self) -> JSONDict:
        """Counters for benchmarks and the control API."""
        return {
            "messages_sent": len(self._sent),
            "per_chat": {str(cid): len(msgs) for cid, msgs in self._sent_by_chat.items()},
            "status_codes": {str(code): n for code, n in sorted(self._status_counts.items())},
            "methods": dict(self._method_counts),
            "requests": len(self.request_log),
            "updates_queued": len(self._all_updates),
            "pending_updates": len(self._pending),
            "webhook_deliveries": self._webhook_deliveries,
            "callback_answers": len(self.callback_answers),
        }

    def _describe_sent(self, last: int = 30) -> str:
        if not self._sent:
            return "the bot sent nothing"
        shown = self._sent[-last:]
        head = f"the bot sent {len(self._sent)} message(s)"
        if len(shown) < len(self._sent):
            head += f", the last {len(shown)}"
        return head + ":\n" + "\n".join("  " + m.describe() for m in shown)

    # ------------------------------------------------------------------ faults

    def inject_fault(
        self,
        kind: str,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        count: int | None = 1,
        seconds: float | None = None,
        retry_after: int = 1,
    ) -> None:
        """Make matching calls fail: for ``count`` calls, or for ``seconds`` if given.

        ``method`` None matches the sending methods (:data:`SENDING_METHODS`); ``count`` None
        with ``seconds`` None lasts until :meth:`clear_faults`. "timeout" stalls the call without
        applying it; "drop" applies it and then closes the connection without an answer.
        """
        self._faults.inject(
            kind,
            method=method,
            chat_id=chat_id,
            count=count,
            seconds=seconds,
            retry_after=retry_after,
        )

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    # ------------------------------------------------------------------ internals: users, chats

    def _ensure_user(self, user_id: int) -> JSONDict:
        user = self._users.get(user_id)
        if user is None:
            self.add_user(user_id)
            user = self._users[user_id]
        return user

    def _ensure_chat(self, user_id: int, chat_id: int | None) -> int:
        if chat_id is None or chat_id == user_id:
            return user_id
        if chat_id not in self._chats:
            if chat_id > 0:
                raise ValueError(f"user {user_id} cannot write in another user's chat {chat_id}")
            self.add_group(
                chat_id, type_="supergroup" if str(chat_id).startswith("-100") else "group"
            )
        return chat_id

    def _alloc_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _user_sends(self, user_id: int, chat_id: int | None, content: JSONDict) -> JSONDict:
        user = self._ensure_user(user_id)
        cid = self._ensure_chat(user_id, chat_id)
        if cid == user_id:
            # Writing to a bot you blocked means you restarted (unblocked) it.
            self._blocked.discard(user_id)
        data: JSONDict = {
            "message_id": self._alloc_message_id(cid),
            "from": user,
            "chat": self._chats[cid],
            "date": now(),
            **content,
        }
        file = None
        for key in ("photo", "document", "voice", "video", "sticker"):
            if key in content:
                obj = content[key]
                file_id = obj[-1]["file_id"] if isinstance(obj, list) else obj["file_id"]
                file = self._files.by_id.get(file_id)
        self._messages[(cid, data["message_id"])] = _Msg(data, False, user_id, file=file)
        return self._queue_update("message", dict(data))

    def _queue_update(self, kind: str, payload: JSONDict) -> JSONDict:
        update_id = self._next_update_id
        self._next_update_id += 1
        update: JSONDict = {"update_id": update_id, kind: payload}
        pending = _Pending(update_id, update, kind)
        self._all_updates[update_id] = pending
        self._pending.append(pending)
        self._notify_updates()
        return update

    def _notify_updates(self) -> None:
        signal_, self._update_signal = self._update_signal, asyncio.Event()
        signal_.set()

    def _notify_change(self, message: SentMessage) -> None:
        self._changes.append(message)
        signal_, self._change_signal = self._change_signal, asyncio.Event()
        signal_.set()

    # ------------------------------------------------------------------ internals: messages

    def _chat_id_param(self, params: Params, name: str = "chat_id") -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            raise ApiError(400, f"Bad Request: {name} is empty")
        try:
            chat_id = as_int(raw, name)
        except ApiError:
            raise chat_not_found() from None
        if chat_id not in self._chats:
            raise chat_not_found()
        return chat_id

    def _writable_chat(self, params: Params) -> int:
        chat_id = self._chat_id_param(params)
        if chat_id in self._blocked:
            raise blocked()
        return chat_id

    @staticmethod
    def _markup(params: Params) -> tuple[JSONDict | None, JSONDict | None]:
        """(markup as sent, inline keyboard to show in the Message) after Telegram's checks."""
        raw = params.get("reply_markup")
        if raw is None or raw == "":
            return None, None
        markup = as_json(raw, "reply markup")
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup, None
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ApiError(400, 'Bad Request: field "inline_keyboard" must be an Array')
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
                if not any(key in button for key in _INLINE_ACTIONS):
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                if "callback_data" in button:
                    data = button["callback_data"]
                    size = len(data.encode()) if isinstance(data, str) else 0
                    if not 1 <= size <= _MAX_CALLBACK_DATA:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        inline: JSONDict = {"inline_keyboard": [[dict(b) for b in row] for row in rows]}
        return inline, inline

    def _reply_to(self, chat_id: int, params: Params) -> JSONDict | None:
        reply_id: int | None = None
        allow_missing = as_bool(params.get("allow_sending_without_reply", False))
        raw = params.get("reply_parameters")
        if raw is not None and raw != "":
            reply = as_json(raw, "reply parameters")
            if isinstance(reply, dict) and reply.get("message_id") is not None:
                reply_id = as_int(reply["message_id"], "message_id")
                allow_missing = as_bool(reply.get("allow_sending_without_reply", False))
        elif params.get("reply_to_message_id") not in (None, ""):
            reply_id = as_int(params["reply_to_message_id"], "reply_to_message_id")
        if reply_id is None:
            return None
        target = self._messages.get((chat_id, reply_id))
        if target is None:
            if allow_missing:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        snapshot = dict(target.data)
        snapshot.pop("reply_to_message", None)
        return snapshot

    def _bot_message(
        self,
        chat_id: int,
        content: JSONDict,
        *,
        kind: str,
        text: str | None,
        markup: tuple[JSONDict | None, JSONDict | None] = (None, None),
        reply_to: JSONDict | None = None,
        file: StoredFile | None = None,
        parse_mode: str | None = None,
    ) -> _Msg:
        date = now()
        message_id = self._alloc_message_id(chat_id)
        data: JSONDict = {
            "message_id": message_id,
            "from": self._bot_user,
            "chat": self._chats[chat_id],
            "date": date,
        }
        if reply_to is not None:
            data["reply_to_message"] = reply_to
        data.update(content)
        if markup[1] is not None:
            data["reply_markup"] = markup[1]
        sent = SentMessage(
            chat_id=chat_id,
            message_id=message_id,
            kind=kind,
            text=text,
            reply_markup=markup[0],
            date=date,
            file_bytes=file.data if file is not None else None,
            file_name=file.file_name if file is not None else None,
            parse_mode=parse_mode,
        )
        msg = _Msg(data, True, self.bot_id, sent=sent, file=file)
        self._messages[(chat_id, message_id)] = msg
        self._sent.append(sent)
        self._sent_by_chat.setdefault(chat_id, []).append(sent)
        self._notify_change(sent)
        return msg

    def _caption(self, params: Params) -> str | None:
        caption = opt_str(params, "caption")
        if caption is not None and len(caption) > _MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        return caption

    def _editable(self, params: Params) -> _Msg:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not supported here")
        chat_id = self._chat_id_param(params)
        if chat_id in self._blocked:
            raise blocked()
        raw_id = params.get("message_id")
        if raw_id is None or raw_id == "":
            raise ApiError(400, "Bad Request: message identifier is not specified")
        msg = self._messages.get((chat_id, as_int(raw_id, "message_id")))
        if msg is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not msg.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        return msg

    def _apply_edit(
        self, msg: _Msg, key: str | None, value: str | None, inline: JSONDict | None
    ) -> JSONDict:
        unchanged_text = key is None or msg.data.get(key) == value
        if unchanged_text and msg.data.get("reply_markup") == inline:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        if key is not None:
            if value is None:
                msg.data.pop(key, None)
            else:
                msg.data[key] = value
        if inline is None:
            msg.data.pop("reply_markup", None)
        else:
            msg.data["reply_markup"] = inline
        msg.data["edit_date"] = now()
        sent = msg.sent
        if sent is not None:
            if key is not None:
                sent.text = value
            sent.reply_markup = inline
            sent.edits += 1
            self._notify_change(sent)
        return msg.data

    # ------------------------------------------------------------------ Bot API methods

    async def _m_true(self, params: Params) -> bool:
        return True

    async def _m_get_me(self, params: Params) -> JSONDict:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _deliverable(self, entry: _Pending, offset: int) -> bool:
        return entry.update_id >= offset or (entry.redelivery and not entry.delivered)

    def _confirmed(self, entry: _Pending, offset: int) -> bool:
        return entry.update_id < offset and (entry.delivered or not entry.redelivery)

    def _confirm(self, offset: int) -> None:
        """Drop updates below ``offset``: the client has them (Telegram's confirmation rule)."""
        if offset > 0:
            while self._pending and self._confirmed(self._pending[0], offset):
                self._pending.popleft()
        elif offset < 0:
            keep = -offset
            while len(self._pending) > keep:
                self._pending.popleft()

    def _collect(self, offset: int, limit: int) -> list[_Pending]:
        batch: list[_Pending] = []
        rejected = False
        allowed = self._allowed_updates
        for entry in self._pending:
            if len(batch) >= limit:
                break
            if offset > 0 and not self._deliverable(entry, offset):
                continue
            if allowed is not None and entry.kind not in allowed:
                rejected = True
                continue
            batch.append(entry)
        if rejected and allowed is not None:
            # Telegram never delivers updates of types the bot did not ask for.
            self._pending = deque(e for e in self._pending if e.kind in allowed)
        return batch

    async def _m_get_updates(self, params: Params) -> list[JSONDict]:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = as_int(params.get("offset") or 0, "offset")
        limit = as_int(params.get("limit") or 100, "limit")
        limit = min(max(limit, 1), 100)
        timeout = as_float(params.get("timeout") or 0, "timeout")
        if params.get("allowed_updates") not in (None, ""):
            allowed = as_json(params["allowed_updates"], "allowed updates")
            if isinstance(allowed, list):
                self._allowed_updates = frozenset(str(a) for a in allowed) or None
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify_updates()  # an older long poll of another client ends with 409
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            batch = self._collect(offset, limit)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._stopping.is_set():
                break
            signal_ = self._update_signal
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal_.wait(), remaining)
            if self._webhook is not None:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
        for entry in batch:
            entry.delivered = True
        return [entry.update for entry in batch]

    async def _m_set_webhook(self, params: Params) -> bool:
        url = opt_str(params, "url") or ""
        if not url:
            await self._m_delete_webhook(params)
            return True
        secret = opt_str(params, "secret_token")
        if secret is not None and (
            not 1 <= len(secret) <= 256
            or not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
        ):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("allowed_updates") not in (None, ""):
            allowed = as_json(params["allowed_updates"], "allowed updates")
            if isinstance(allowed, list):
                self._allowed_updates = frozenset(str(a) for a in allowed) or None
        if self._webhook is not None:
            await self._stop_webhook_task(self._webhook)
        if as_bool(params.get("drop_pending_updates", False)):
            self._pending.clear()
        max_connections = as_int(params.get("max_connections") or 40, "max_connections")
        webhook = _Webhook(url=url, secret_token=secret, max_connections=max_connections)
        webhook.task = asyncio.create_task(self._deliver_webhook(webhook))
        self._webhook = webhook
        self._notify_updates()  # a long poll still waiting ends with 409
        return True

    async def _m_delete_webhook(self, params: Params) -> bool:
        webhook, self._webhook = self._webhook, None
        if webhook is not None:
            await self._stop_webhook_task(webhook)
        if as_bool(params.get("drop_pending_updates", False)):
            self._pending.clear()
        return True

    async def _m_get_webhook_info(self, params: Params) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook.url if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook is not None:
            info["max_connections"] = self._webhook.max_connections
            if self._webhook.last_error_date is not None:
                info["last_error_date"] = self._webhook.last_error_date
                info["last_error_message"] = self._webhook.last_error_message
        if self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    async def _stop_webhook_task(self, webhook: _Webhook) -> None:
        task, webhook.task = webhook.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver_webhook(self, webhook: _Webhook) -> None:
        """POST pending updates one at a time, in order, retrying each until it is accepted."""
        headers = {}
        if webhook.secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook.secret_token
        delay = self.webhook_retry_delay
        timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                signal_ = self._update_signal
                entry = self._next_webhook_update()
                if entry is None:
                    await signal_.wait()
                    continue
                error: str | None = None
                try:
                    async with session.post(
                        webhook.url, json=entry.update, headers=headers
                    ) as resp:
                        await resp.read()
                        if not 200 <= resp.status < 300:
                            error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = f"Connection failed: {exc!r}"
                except Exception as exc:
                    # Keep delivering whatever the receiver does; Telegram never gives up.
                    logger.warning("webhook delivery to %s failed: %r", webhook.url, exc)
                    error = f"Delivery failed: {exc!r}"
                if error is None:
                    entry.delivered = True
                    if self._pending and self._pending[0] is entry:
                        self._pending.popleft()
                    self._webhook_deliveries += 1
                    delay = self.webhook_retry_delay
                else:
                    webhook.last_error_date = now()
                    webhook.last_error_message = error
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)

    def _next_webhook_update(self) -> _Pending | None:
        allowed = self._allowed_updates
        while self._pending:
            entry = self._pending[0]
            if allowed is None or entry.kind in allowed:
                return entry
            self._pending.popleft()
        return None

    async def _m_send_message(self, params: Params) -> JSONDict:
        chat_id = self._writable_chat(params)
        text = opt_str(params, "text")
        if text is None or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > _MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        markup = self._markup(params)
        reply_to = self._reply_to(chat_id, params)
        content: JSONDict = {"text": text}
        entities = params.get("entities")
        if entities not in (None, ""):
            content["entities"] = as_json(entities, "entities")
        msg = self._bot_message(
            chat_id,
            content,
            kind="text",
            text=text,
            markup=markup,
            reply_to=reply_to,
            parse_mode=opt_str(params, "parse_mode"),
        )
        return msg.data

    async def _m_edit_message_text(self, params: Params) -> JSONDict:
        msg = self._editable(params)
        text = opt_str(params, "text")
        if text is None or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > _MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        if "text" not in msg.data:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        _, inline = self._markup(params)
        result = self._apply_edit(msg, "text", text, inline)
        if msg.sent is not None:
            msg.sent.parse_mode = opt_str(params, "parse_mode")
        return result

    async def _m_edit_message_caption(self, params: Params) -> JSONDict:
        msg = self._editable(params)
        if not any(key in msg.data for key in ("photo", "document", "video", "voice")):
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        _, inline = self._markup(params)
        return self._apply_edit(msg, "caption", self._caption(params), inline)

    async def _m_edit_message_reply_markup(self, params: Params) -> JSONDict:
        msg = self._editable(params)
        _, inline = self._markup(params)
        return self._apply_edit(msg, None, None, inline)

    async def _m_delete_message(self, params: Params) -> bool:
        chat_id = self._chat_id_param(params)
        message_id = as_int(params.get("message_id"), "message_id")
        msg = self._messages.pop((chat_id, message_id), None)
        if msg is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        if msg.sent is not None:
            msg.sent.deleted = True
            self._notify_change(msg.sent)
        return True

    async def _m_answer_callback_query(self, params: Params) -> bool:
        query_id = opt_str(params, "callback_query_id")
        if query_id is None or query_id not in self._open_callbacks:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._open_callbacks.discard(query_id)
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "text": opt_str(params, "text"),
                "show_alert": as_bool(params.get("show_alert", False)),
                "url": opt_str(params, "url"),
            }
        )
        return True

    async def _m_send_photo(self, params: Params) -> JSONDict:
        chat_id = self._writable_chat(params)
        caption = self._caption(params)
        markup = self._markup(params)
        reply_to = self._reply_to(chat_id, params)
        stored = self._files.input_file(params, "photo", "photos", "jpg", "image/jpeg")
        content: JSONDict = {"photo": photo_sizes(stored)}
        if caption is not None:
            content["caption"] = caption
        msg = self._bot_message(
            chat_id,
            content,
            kind="photo",
            text=caption,
            markup=markup,
            reply_to=reply_to,
            file=stored,
            parse_mode=opt_str(params, "parse_mode"),
        )
        return msg.data

    async def _m_send_document(self, params: Params) -> JSONDict:
        chat_id = self._writable_chat(params)
        caption = self._caption(params)
        markup = self._markup(params)
        reply_to = self._reply_to(chat_id, params)
        stored = self._files.input_file(params, "document", "documents", "bin", None)
        content: JSONDict = {"document": document_json(stored)}
        if caption is not None:
            content["caption"] = caption
        msg = self._bot_message(
            chat_id,
            content,
            kind="document",
            text=caption,
            markup=markup,
            reply_to=reply_to,
            file=stored,
            parse_mode=opt_str(params, "parse_mode"),
        )
        return msg.data

    async def _m_get_file(self, params: Params) -> JSONDict:
        file_id = opt_str(params, "file_id") or ""
        stored = self._files.by_id.get(file_id)
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    def _source_message(self, params: Params, verb: str) -> _Msg:
        from_chat = self._chat_id_param(params, "from_chat_id")
        message_id = as_int(params.get("message_id"), "message_id")
        source = self._messages.get((from_chat, message_id))
        if source is None:
            raise ApiError(400, f"Bad Request: message to {verb} not found")
        return source

    @staticmethod
    def _content_of(source: _Msg) -> JSONDict:
        return {key: source.data[key] for key in _CONTENT_KEYS if key in source.data}

    async def _m_forward_message(self, params: Params) -> JSONDict:
        chat_id = self._writable_chat(params)
        source = self._source_message(params, "forward")
        content = self._content_of(source)
        sender = source.data.get("from", self._bot_user)
        content["forward_origin"] = {
            "type": "user",
            "sender_user": sender,
            "date": source.data["date"],
        }
        text = content.get("text", content.get("caption"))
        msg = self._bot_message(chat_id, content, kind="forward", text=text, file=source.file)
        return msg.data

    async def _m_copy_message(self, params: Params) -> JSONDict:
        chat_id = self._writable_chat(params)
        source = self._source_message(params, "copy")
        content = self._content_of(source)
        if "caption" in params:
            caption = self._caption(params)
            if caption:
                content["caption"] = caption
            else:
                content.pop("caption", None)
        markup = self._markup(params)
        reply_to = self._reply_to(chat_id, params)
        text = content.get("text", content.get("caption"))
        msg = self._bot_message(
            chat_id,
            content,
            kind="copy",
            text=text,
            markup=markup,
            reply_to=reply_to,
            file=source.file,
        )
        return {"message_id": msg.data["message_id"]}

    @staticmethod
    def _scope_key(params: Params) -> tuple[str, str]:
        scope = params.get("scope")
        parsed = as_json(scope, "scope") if scope not in (None, "") else None
        key = "default"
        if isinstance(parsed, dict):
            key = str(parsed.get("type", "default"))
            for sub in ("chat_id", "user_id"):
                if sub in parsed:
                    key += f":{parsed[sub]}"
        return key, opt_str(params, "language_code") or ""

    async def _m_set_my_commands(self, params: Params) -> bool:
        commands = as_json(params.get("commands"), "commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands must be an Array")
        cleaned: list[JSONDict] = []
        for item in commands:
            if not isinstance(item, dict):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            command = str(item.get("command", ""))
            description = str(item.get("description", ""))
            valid = 1 <= len(command) <= 32 and all(
                c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in command
            )
            if not valid:
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command, "description": description})
        self.commands[self._scope_key(params)] = cleaned
        return True

    async def _m_get_my_commands(self, params: Params) -> list[JSONDict]:
        return self.commands.get(self._scope_key(params), [])

    async def _m_delete_my_commands(self, params: Params) -> bool:
        self.commands.pop(self._scope_key(params), None)
        return True

    async def _m_set_chat_menu_button(self, params: Params) -> bool:
        chat_id = self._chat_id_param(params) if params.get("chat_id") not in (None, "") else None
        button = params.get("menu_button")
        parsed = as_json(button, "menu button") if button not in (None, "") else None
        self.menu_buttons[chat_id] = parsed if isinstance(parsed, dict) else {"type": "default"}
        return True

    async def _m_get_chat_menu_button(self, params: Params) -> JSONDict:
        chat_id = self._chat_id_param(params) if params.get("chat_id") not in (None, "") else None
        return self.menu_buttons.get(chat_id, self.menu_buttons.get(None, {"type": "commands"}))

    async def _m_get_chat(self, params: Params) -> JSONDict:
        chat_id = self._chat_id_param(params)
        return {
            **self._chats[chat_id],
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _m_send_chat_action(self, params: Params) -> bool:
        self._writable_chat(params)
        return True

    # ------------------------------------------------------------------ HTTP plumbing

    @staticmethod
    async def _read_params(request: web.Request) -> Params:
        params: Params = dict(request.query)
        if request.method != "POST" or not request.body_exists:
            return params
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON request body") from None
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: JSON request body must be an object")
            params.update(body)
        elif content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = Upload(value.filename, value.file.read(), value.content_type)
                else:
                    params[key] = value
        return params

    def _record(self, method: str, status: int) -> None:
        self.request_log.append((method, status))
        self._status_counts[status] += 1
        self._method_counts[method] += 1

    @staticmethod
    def _hang_up(request: web.Request) -> web.Response:
        """Close the connection without answering: the client sees a dropped connection."""
        if request.transport is not None:
            request.transport.close()
        return web.Response()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        key = method.lower()
        known = self._methods.get(key)
        name = known[0] if known is not None else method
        if request.match_info["token"] != self.bot_token:
            self._record(name, 401)
            return error_response(ApiError(401, "Unauthorized"))
        try:
            params = await self._read_params(request)
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            raw_chat = params.get("chat_id")
            chat_id: int | None = None
            if raw_chat not in (None, ""):
                with contextlib.suppress(ApiError):
                    chat_id = as_int(raw_chat, "chat_id")
            fault = self._faults.match(key, chat_id)
            if fault is not None:
                return await self._apply_fault(fault, request, name, known, params)
            if known is None:
                raise ApiError(
                    400, f"Bad Request: method {method!r} is not implemented by the fake server"
                )
            if self.enforce_limits and key in SENDING_LOWER:
                self._limiter.check(chat_id)
            result = await known[1](params)
        except ApiError as error:
            self._record(name, error.code)
            return error_response(error)
        self._record(name, 200)
        return json_response({"ok": True, "result": result})

    async def _apply_fault(
        self,
        fault: Fault,
        request: web.Request,
        name: str,
        known: tuple[str, Handler] | None,
        params: Params,
    ) -> web.StreamResponse:
        """Stall, hang up or raise the error the fault stands for."""
        logger.debug("injecting fault %s into %s", fault.kind, name)
        if fault.kind == "timeout":
            self._record(name, _NO_RESPONSE)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.fault_timeout_delay)
            return self._hang_up(request)
        if fault.kind == "drop":
            if known is not None:
                with contextlib.suppress(ApiError):
                    await known[1](params)
            self._record(name, _NO_RESPONSE)
            return self._hang_up(request)
        raise fault.error()

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.bot_token:
            return error_response(ApiError(401, "Unauthorized"))
        stored = self._files.by_path.get(request.match_info["file_path"])
        if stored is None or stored.data is None:
            return error_response(ApiError(404, "Not Found: file not found"))
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # ------------------------------------------------------------------ control side

    def _control(self, action: str, body: JSONDict) -> Any:
        if action == "set_latency":
            self.latency = float(body["seconds"])
            return None
        if action == "set_enforce_limits":
            self.enforce_limits = bool(body["enabled"])
            return None
        if action not in _CONTROL_METHODS:
            raise LookupError(f"unknown control action {action!r}")
        kwargs = dict(body)
        if "file_bytes_b64" in kwargs:
            kwargs["file_bytes"] = base64.b64decode(kwargs.pop("file_bytes_b64"))
        if action == "add_group" and "type" in kwargs:
            kwargs["type_"] = kwargs.pop("type")
        return getattr(self, action)(**kwargs)

    async def _handle_control_post(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        try:
            body = await request.json() if request.body_exists else {}
            if not isinstance(body, dict):
                raise TypeError("the body must be a JSON object")
            result = self._control(action, body)
        except (LookupError, TypeError, ValueError) as exc:
            return json_response({"ok": False, "description": str(exc)}, status=400)
        return json_response({"ok": True, "result": result})

    async def _handle_control_get(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        query = request.query
        try:
            chat_id = int(query["chat_id"]) if query.get("chat_id") else None
            if action == "sent":
                result: Any = [m.to_json() for m in self.sent(chat_id)]
            elif action == "stats":
                result = self.stats()
            elif action == "callback_answers":
                result = self.callback_answers
            elif action == "wait_for_count":
                messages = await self.wait_for_count(
                    int(query["n"]),
                    chat_id=chat_id,
                    timeout=float(query.get("timeout", "10")),
                )
                result = [m.to_json() for m in messages]
            else:
                raise LookupError(f"unknown control query {action!r}")
        except (LookupError, ValueError) as exc:
            return json_response({"ok": False, "description": str(exc)}, status=400)
        except TimeoutError as exc:
            return json_response({"ok": False, "description": str(exc)}, status=408)
        return json_response({"ok": True, "result": result})
