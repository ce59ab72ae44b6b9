"""The fake server itself: the aiohttp application on loopback, wiring the Bot API, the user
side and the control side to one shared state, with the HTTP plumbing that applies latency,
flood limits and injected faults to each Bot API call."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter, deque
from typing import Final

from aiohttp import web

from bot.sandbox.fake_api.bot_api import BotApi
from bot.sandbox.fake_api.control import ControlSide
from bot.sandbox.fake_api.faults import Fault, FaultInjector
from bot.sandbox.fake_api.files import FileStore
from bot.sandbox.fake_api.limits import FloodLimiter
from bot.sandbox.fake_api.state import Msg, SentMessage, World
from bot.sandbox.fake_api.updates import Pending, UpdateQueue
from bot.sandbox.fake_api.users import ActingAsUsers
from bot.sandbox.fake_api.webhook import WebhookSender
from bot.sandbox.fake_api.wire import (
    SENDING_LOWER,
    ApiError,
    Handler,
    JSONDict,
    Params,
    Upload,
    as_int,
    error_response,
    json_response,
)

logger = logging.getLogger(__name__)

_NO_RESPONSE: Final = 0  # status recorded in request_log when the connection was closed


class FakeTelegramServer(ActingAsUsers, ControlSide):
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
            is_stopping=lambda: self._stopping.is_set(),  # start() replaces the event
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
