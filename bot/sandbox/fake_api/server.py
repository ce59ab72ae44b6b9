"""The fake server itself: the aiohttp application on loopback, wiring the Bot API, the user
side and the control side to one shared state, with the HTTP plumbing that applies latency,
flood limits and injected faults to each Bot API call."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from bot.sandbox.fake_api.bot_api import BotApi
from bot.sandbox.fake_api.faults import Fault, FaultInjector
from bot.sandbox.fake_api.files import (
    TINY_MP4,
    TINY_OGG,
    TINY_PNG,
    TINY_WEBP,
    FileStore,
    document_json,
    photo_sizes,
)
from bot.sandbox.fake_api.limits import FloodLimiter
from bot.sandbox.fake_api.state import Msg, SentMessage, World
from bot.sandbox.fake_api.updates import Pending, UpdateQueue
from bot.sandbox.fake_api.webhook import WebhookSender
from bot.sandbox.fake_api.wire import (
    SENDING_LOWER,
    ApiError,
    Handler,
    JSONDict,
    Params,
    Upload,
    as_int,
    command_entities,
    error_response,
    json_response,
    now,
)

logger = logging.getLogger(__name__)

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
_NO_RESPONSE: Final = 0  # status recorded in request_log when the connection was closed


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
        self.request_log: list[tuple[str, int]] = []

        bot_user: JSONDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": bot_username,
        }
        self._world = World(bot_user=bot_user, on_change=self._notify_change)
        self._files = FileStore()
        self._updates = UpdateQueue()
        self._webhooks = WebhookSender(self._updates, settings=self)
        self._faults = FaultInjector()
        self._limiter = FloodLimiter(rates=self)
        self._api = BotApi(
            world=self._world,
            files=self._files,
            updates=self._updates,
            webhooks=self._webhooks,
            is_stopping=lambda: self._stopping.is_set(),
        )
        self._status_counts: Counter[int] = Counter()
        self._method_counts: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    @property
    def commands(self) -> dict[tuple[str, str], list[JSONDict]]:
        """The bot's commands as set with setMyCommands, by (scope, language code)."""
        return self._api.commands

    @property
    def menu_buttons(self) -> dict[int | None, JSONDict]:
        """The menu buttons set with setChatMenuButton, by chat (None: the default)."""
        return self._api.menu_buttons

    def _notify_change(self, message: SentMessage) -> None:
        """Every new, edited or deleted bot message passes here (a subclass may watch them)."""
        self._world.record_change(message)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the loopback socket (port 0 picks a free one) and start serving."""
        if self._runner is not None:
            raise RuntimeError("server already started")
        # Fresh events bind to the running loop, so a server can be restarted in a new loop.
        self._stopping = asyncio.Event()
        self._updates.reset_signal()
        self._world.reset_signal()
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
        self._updates.notify()
        await self._webhooks.stop_delivery()
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
        self._world.users[user_id] = user
        self._world.chats[user_id] = chat

    def add_group(self, chat_id: int, *, title: str = "Staff", type_: str = "supergroup") -> None:
        """Make a group the bot is a member of (negative id; supergroups use ``-100...``)."""
        if chat_id >= 0:
            raise ValueError(f"group ids are negative, got {chat_id}")
        if type_ not in {"group", "supergroup"}:
            raise ValueError(f"group type must be 'group' or 'supergroup', got {type_!r}")
        self._world.chats[chat_id] = {"id": chat_id, "type": type_, "title": title}

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
            target = self._world.messages.get((self._ensure_chat(user_id, chat_id), reply_to))
            if target is None:
                raise ValueError(f"no message {reply_to} to reply to")
            content["reply_to_message"] = target.quoted()
        return self._user_sends(user_id, chat_id, content)

    def press_button(
        self, user_id: int, message_id: int, data: str, *, chat_id: int | None = None
    ) -> JSONDict:
        """The user presses an inline button of a bot message (any data, to allow stale presses)."""
        user = self._ensure_user(user_id)
        cid = self._ensure_chat(user_id, chat_id)
        msg = self._world.messages.get((cid, message_id))
        if msg is None or not msg.from_bot:
            raise ValueError(f"no bot message {message_id} in chat {cid}")
        query_id = str(next(self._world.callback_counter))
        self._world.open_callbacks.add(query_id)
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
        msg = self._world.messages.get((cid, message_id))
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
        return self._updates.redeliver(update_id)

    def block_bot(self, user_id: int) -> None:
        """From now on sending to this user's private chat fails with 403."""
        self._ensure_user(user_id)
        self._world.blocked.add(user_id)

    def unblock_bot(self, user_id: int) -> None:
        """Undo :meth:`block_bot` (a user writing to the bot unblocks it too)."""
        self._world.blocked.discard(user_id)

    # ------------------------------------------------------------------ internals

    def _ensure_user(self, user_id: int) -> JSONDict:
        user = self._world.users.get(user_id)
        if user is None:
            self.add_user(user_id)
            user = self._world.users[user_id]
        return user

    def _ensure_chat(self, user_id: int, chat_id: int | None) -> int:
        if chat_id is None or chat_id == user_id:
            return user_id
        if chat_id not in self._world.chats:
            if chat_id > 0:
                raise ValueError(f"user {user_id} cannot write in another user's chat {chat_id}")
            self.add_group(
                chat_id, type_="supergroup" if str(chat_id).startswith("-100") else "group"
            )
        return chat_id

    # tests/test_fuzz.py builds raw updates with these two.

    def _alloc_message_id(self, chat_id: int) -> int:
        return self._world.alloc_message_id(chat_id)

    def _queue_update(self, kind: str, payload: JSONDict) -> JSONDict:
        return self._updates.queue(kind, payload)

    def _user_sends(self, user_id: int, chat_id: int | None, content: JSONDict) -> JSONDict:
        user = self._ensure_user(user_id)
        cid = self._ensure_chat(user_id, chat_id)
        if cid == user_id:
            # Writing to a bot you blocked means you restarted (unblocked) it.
            self._world.blocked.discard(user_id)
        data: JSONDict = {
            "message_id": self._alloc_message_id(cid),
            "from": user,
            "chat": self._world.chats[cid],
            "date": now(),
            **content,
        }
        file = None
        for key in ("photo", "document", "voice", "video", "sticker"):
            if key in content:
                obj = content[key]
                file_id = obj[-1]["file_id"] if isinstance(obj, list) else obj["file_id"]
                file = self._files.by_id.get(file_id)
        self._world.messages[(cid, data["message_id"])] = Msg(data, False, user_id, file=file)
        return self._queue_update("message", dict(data))

    # ------------------------------------------------------------------ reading what the bot did

    @property
    def callback_answers(self) -> list[JSONDict]:
        """Every answerCallbackQuery the bot made, in order."""
        return self._world.callback_answers

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """Messages the bot sent, in order, in their current state (edits applied)."""
        if chat_id is None:
            return list(self._world.sent)
        return list(self._world.sent_by_chat.get(chat_id, ()))

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - public API; used with asyncio.timeout inside
    ) -> SentMessage:
        """First sent message (already sent, or sent or edited later) that matches."""
        world = self._world
        for message in world.sent:
            if predicate(message):
                return message
        cursor = len(world.changes)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    signal_ = world.change_signal
                    while cursor < len(world.changes):
                        message = world.changes[cursor]
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
        world = self._world
        try:
            async with asyncio.timeout(timeout):
                while True:
                    signal_ = world.change_signal
                    messages = world.sent if chat_id is None else world.sent_by_chat.get(chat_id)
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
            "messages_sent": len(self._world.sent),
            "per_chat": {str(cid): len(msgs) for cid, msgs in self._world.sent_by_chat.items()},
            "status_codes": {str(code): n for code, n in sorted(self._status_counts.items())},
            "methods": dict(self._method_counts),
            "requests": len(self.request_log),
            "updates_queued": len(self._updates.all),
            "pending_updates": len(self._updates.pending),
            "webhook_deliveries": self._webhooks.deliveries,
            "callback_answers": len(self._world.callback_answers),
        }

    def _describe_sent(self, last: int = 30) -> str:
        sent = self._world.sent
        if not sent:
            return "the bot sent nothing"
        shown = sent[-last:]
        head = f"the bot sent {len(sent)} message(s)"
        if len(shown) < len(sent):
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

    # ------------------------------------------------------------------ HTTP: the Bot API

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        key = method.lower()
        known = self._api.lookup(key)
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

    # ------------------------------------------------------------------ HTTP: file downloads

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

    # ------------------------------------------------------------------ internals tests reach into
    # (tests/test_fuzz.py forges updates, tests/faults/test_kill_replies.py checks confirmations)

    @property
    def _pending(self) -> deque[Pending]:
        return self._updates.pending

    @property
    def _all_updates(self) -> dict[int, Pending]:
        return self._updates.all

    @property
    def _messages(self) -> dict[tuple[int, int], Msg]:
        return self._world.messages

    @property
    def _callback_counter(self) -> itertools.count[int]:
        return self._world.callback_counter

    @property
    def _open_callbacks(self) -> set[str]:
        return self._world.open_callbacks
