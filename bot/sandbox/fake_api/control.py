"""The control side of the fake server: reading what the bot sent, counters, fault injection,
and the same actions over HTTP under ``/_control/`` for other processes (the demo, benchmarks)."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from bot.sandbox.fake_api.faults import FaultInjector
from bot.sandbox.fake_api.state import SentMessage, World
from bot.sandbox.fake_api.updates import UpdateQueue
from bot.sandbox.fake_api.webhook import WebhookSender
from bot.sandbox.fake_api.wire import JSONDict, json_response

#: Methods of the server that ``POST /_control/{action}`` may call, with the JSON body as kwargs.
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
        "remove_bot_from_group",
        "restrict_bot",
        "restore_bot",
        "upgrade_group",
        "inject_fault",
        "clear_faults",
    }
)


class ControlSide:
    """The test-facing reads and fault controls of :class:`FakeTelegramServer`."""

    latency: float
    enforce_limits: bool
    request_log: list[tuple[str, int]]
    _world: World
    _updates: UpdateQueue
    _webhooks: WebhookSender
    _faults: FaultInjector
    _status_counts: Counter[int]
    _method_counts: Counter[str]

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

    # ------------------------------------------------------------------ over HTTP

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
