"""Acting as the bot's users: what a person does in a Telegram client (write, press a button,
send media, edit, block the bot) becomes the update the bot receives."""

from __future__ import annotations

from bot.sandbox.fake_api.files import (
    TINY_MP4,
    TINY_OGG,
    TINY_PNG,
    TINY_WEBP,
    FileStore,
    document_json,
    photo_sizes,
)
from bot.sandbox.fake_api.state import Msg, World
from bot.sandbox.fake_api.updates import UpdateQueue
from bot.sandbox.fake_api.wire import JSONDict, command_entities, now


class ActingAsUsers:
    """The user side of :class:`FakeTelegramServer`; synchronous, called on the server's loop."""

    _world: World
    _files: FileStore
    _updates: UpdateQueue

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

    def remove_bot_from_group(self, chat_id: int, *, banned: bool = True) -> None:
        """An admin removes the bot from a group (``banned``: kicked, else it just left): its
        sends there answer 403 from now on, and so do getChat and getChatMember."""
        self._require_group(chat_id)
        self._world.bot_standing[chat_id] = "kicked" if banned else "left"

    def restrict_bot(self, chat_id: int) -> None:
        """An admin takes away the bot's right to send in a group; it stays a member."""
        self._require_group(chat_id)
        self._world.bot_standing[chat_id] = "restricted"

    def restore_bot(self, chat_id: int) -> None:
        """The bot is a plain member of the group again."""
        self._world.bot_standing.pop(chat_id, None)

    def upgrade_group(self, chat_id: int, *, new_chat_id: int) -> None:
        """A basic group becomes a supergroup (an admin enabled a setting that needs one): it
        gets a new id, the bot stays a member there, and every call naming the old id answers
        400 "group chat was upgraded to a supergroup chat" with ``migrate_to_chat_id``."""
        self._require_group(chat_id)
        old = self._world.chats[chat_id]
        if old.get("type") != "group":
            raise ValueError(f"{chat_id} is already a supergroup")
        if new_chat_id in self._world.chats:
            raise ValueError(f"{new_chat_id} is already a chat of the fake server")
        self.add_group(new_chat_id, title=str(old.get("title", "Staff")), type_="supergroup")
        self._world.migrated_to[chat_id] = new_chat_id

    def _require_group(self, chat_id: int) -> None:
        if self._world.chats.get(chat_id, {}).get("type") not in {"group", "supergroup"}:
            raise ValueError(f"{chat_id} is not a group of the fake server (add_group first)")

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
