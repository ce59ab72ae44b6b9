"""The Bot API methods the bot calls, by name: getting updates (long polling or a webhook), the
bot's own setup (commands, menu button) and chat queries; the message methods are in
:mod:`bot.sandbox.fake_api.messages`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Final

from bot.sandbox.fake_api.files import FileStore
from bot.sandbox.fake_api.messages import MessageMethods
from bot.sandbox.fake_api.state import World
from bot.sandbox.fake_api.updates import UpdateQueue
from bot.sandbox.fake_api.webhook import WebhookSender
from bot.sandbox.fake_api.wire import (
    ApiError,
    Handler,
    JSONDict,
    Params,
    as_bool,
    as_float,
    as_int,
    as_json,
    opt_str,
)

#: What a restricted member may or may not do (ChatMemberRestricted); a restricted bot here
#: may do none of it.
_RESTRICTED_RIGHTS: Final = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
    "can_react_to_messages",
)


class BotApi:
    """Every implemented method, looked up case-insensitively as Telegram does."""

    def __init__(
        self,
        *,
        world: World,
        files: FileStore,
        updates: UpdateQueue,
        webhooks: WebhookSender,
        is_stopping: Callable[[], bool],
    ) -> None:
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.menu_buttons: dict[int | None, JSONDict] = {}
        self._world = world
        self._updates = updates
        self._webhooks = webhooks
        self._is_stopping = is_stopping
        table: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            **MessageMethods(world, files).handlers(),
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "setMyDescription": self._true,
            "setMyShortDescription": self._true,
            "setMyName": self._true,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "sendChatAction": self._send_chat_action,
        }
        self._methods = {name.lower(): (name, handler) for name, handler in table.items()}

    def lookup(self, method: str) -> tuple[str, Handler] | None:
        """(canonical name, handler) of a method given in any case; None if not implemented."""
        return self._methods.get(method.lower())

    # ------------------------------------------------------------------ the bot itself

    async def _true(self, params: Params) -> bool:
        return True

    async def _get_me(self, params: Params) -> JSONDict:
        return {
            **self._world.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # ------------------------------------------------------------------ updates

    async def _get_updates(self, params: Params) -> list[JSONDict]:
        if self._webhooks.active is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        updates = self._updates
        offset = as_int(params.get("offset") or 0, "offset")
        limit = as_int(params.get("limit") or 100, "limit")
        limit = min(max(limit, 1), 100)
        timeout = as_float(params.get("timeout") or 0, "timeout")
        updates.set_allowed(params)
        updates.confirm(offset)
        updates.poll_generation += 1
        generation = updates.poll_generation
        updates.notify()  # an older long poll of another client ends with 409
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            batch = updates.collect(offset, limit)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._is_stopping():
                break
            signal_ = updates.signal
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal_.wait(), remaining)
            if self._webhooks.active is not None:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            if generation != updates.poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
        for entry in batch:
            entry.delivered = True
        return [entry.update for entry in batch]

    async def _set_webhook(self, params: Params) -> bool:
        url = opt_str(params, "url") or ""
        if not url:
            await self._delete_webhook(params)
            return True
        secret = opt_str(params, "secret_token")
        if secret is not None and (
            not 1 <= len(secret) <= 256
            or not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
        ):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self._updates.set_allowed(params)
        await self._webhooks.stop_delivery()
        if as_bool(params.get("drop_pending_updates", False)):
            self._updates.pending.clear()
        max_connections = as_int(params.get("max_connections") or 40, "max_connections")
        self._webhooks.start(url=url, secret_token=secret, max_connections=max_connections)
        self._updates.notify()  # a long poll still waiting ends with 409
        return True

    async def _delete_webhook(self, params: Params) -> bool:
        await self._webhooks.remove()
        if as_bool(params.get("drop_pending_updates", False)):
            self._updates.pending.clear()
        return True

    async def _get_webhook_info(self, params: Params) -> JSONDict:
        webhook = self._webhooks.active
        info: JSONDict = {
            "url": webhook.url if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates.pending),
        }
        if webhook is not None:
            info["max_connections"] = webhook.max_connections
            if webhook.last_error_date is not None:
                info["last_error_date"] = webhook.last_error_date
                info["last_error_message"] = webhook.last_error_message
        if self._updates.allowed is not None:
            info["allowed_updates"] = sorted(self._updates.allowed)
        return info

    # ------------------------------------------------------------------ the bot's setup

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

    async def _set_my_commands(self, params: Params) -> bool:
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

    async def _get_my_commands(self, params: Params) -> list[JSONDict]:
        return self.commands.get(self._scope_key(params), [])

    async def _delete_my_commands(self, params: Params) -> bool:
        self.commands.pop(self._scope_key(params), None)
        return True

    def _optional_chat(self, params: Params) -> int | None:
        return self._world.chat_param(params) if params.get("chat_id") not in (None, "") else None

    async def _set_chat_menu_button(self, params: Params) -> bool:
        chat_id = self._optional_chat(params)
        button = params.get("menu_button")
        parsed = as_json(button, "menu button") if button not in (None, "") else None
        self.menu_buttons[chat_id] = parsed if isinstance(parsed, dict) else {"type": "default"}
        return True

    async def _get_chat_menu_button(self, params: Params) -> JSONDict:
        chat_id = self._optional_chat(params)
        return self.menu_buttons.get(chat_id, self.menu_buttons.get(None, {"type": "commands"}))

    # ------------------------------------------------------------------ chats

    async def _get_chat(self, params: Params) -> JSONDict:
        chat_id = self._world.chat_param(params)
        self._world.check_member(chat_id)
        return {
            **self._world.chats[chat_id],
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

    async def _get_chat_member(self, params: Params) -> JSONDict:
        chat_id = self._world.chat_param(params)
        self._world.check_member(chat_id)
        user_id = as_int(params.get("user_id"), "user_id")
        if user_id == self._world.bot_id:
            user = self._world.bot_user
            standing = self._world.bot_standing.get(chat_id, "member")
        elif user_id in self._world.users:
            user, standing = self._world.users[user_id], "member"
        else:
            raise ApiError(400, "Bad Request: PARTICIPANT_ID_INVALID")
        if standing != "restricted":
            return {"status": standing, "user": user}
        return {
            "status": "restricted",
            "user": user,
            "is_member": True,
            "until_date": 0,
            **dict.fromkeys(_RESTRICTED_RIGHTS, False),
        }

    async def _send_chat_action(self, params: Params) -> bool:
        self._world.writable_chat(params)
        return True
