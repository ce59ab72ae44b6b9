"""The Bot API methods that create or change messages (send, edit, delete, media, forward, copy,
answering button presses), with the checks Telegram makes before accepting them."""

from __future__ import annotations

from typing import Final

from bot.sandbox.fake_api.files import FileStore, StoredFile, document_json, photo_sizes
from bot.sandbox.fake_api.state import Msg, SentMessage, World
from bot.sandbox.fake_api.wire import (
    ApiError,
    Handler,
    JSONDict,
    Params,
    as_bool,
    as_int,
    as_json,
    now,
    opt_str,
)

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
_MAX_TEXT: Final = 4096
_MAX_CAPTION: Final = 1024
_MAX_CALLBACK_DATA: Final = 64

#: (markup as sent, inline keyboard to show in the Message)
_Markup = tuple[JSONDict | None, JSONDict | None]


class MessageMethods:
    """Handlers of the message methods, over the chats of ``world`` and the files of ``files``."""

    def __init__(self, world: World, files: FileStore) -> None:
        self._world = world
        self._files = files

    def handlers(self) -> dict[str, Handler]:
        """Bot API method name -> handler."""
        return {
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "answerCallbackQuery": self.answer_callback_query,
            "sendPhoto": self.send_photo,
            "sendDocument": self.send_document,
            "getFile": self.get_file,
            "forwardMessage": self.forward_message,
            "copyMessage": self.copy_message,
        }

    # ------------------------------------------------------------------ sending

    async def send_message(self, params: Params) -> JSONDict:
        chat_id = self._world.writable_chat(params)
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

    async def send_photo(self, params: Params) -> JSONDict:
        chat_id = self._world.writable_chat(params)
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

    async def send_document(self, params: Params) -> JSONDict:
        chat_id = self._world.writable_chat(params)
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

    async def forward_message(self, params: Params) -> JSONDict:
        chat_id = self._world.writable_chat(params)
        source = self._source_message(params, "forward")
        content = self._content_of(source)
        sender = source.data.get("from", self._world.bot_user)
        content["forward_origin"] = {
            "type": "user",
            "sender_user": sender,
            "date": source.data["date"],
        }
        text = content.get("text", content.get("caption"))
        msg = self._bot_message(chat_id, content, kind="forward", text=text, file=source.file)
        return msg.data

    async def copy_message(self, params: Params) -> JSONDict:
        chat_id = self._world.writable_chat(params)
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

    async def get_file(self, params: Params) -> JSONDict:
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

    # ------------------------------------------------------------------ changing

    async def edit_message_text(self, params: Params) -> JSONDict:
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

    async def edit_message_caption(self, params: Params) -> JSONDict:
        msg = self._editable(params)
        if not any(key in msg.data for key in ("photo", "document", "video", "voice")):
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        _, inline = self._markup(params)
        return self._apply_edit(msg, "caption", self._caption(params), inline)

    async def edit_message_reply_markup(self, params: Params) -> JSONDict:
        msg = self._editable(params)
        _, inline = self._markup(params)
        return self._apply_edit(msg, None, None, inline)

    async def delete_message(self, params: Params) -> bool:
        chat_id = self._world.chat_param(params)
        message_id = as_int(params.get("message_id"), "message_id")
        msg = self._world.messages.pop((chat_id, message_id), None)
        if msg is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        if msg.sent is not None:
            msg.sent.deleted = True
            self._world.on_change(msg.sent)
        return True

    async def answer_callback_query(self, params: Params) -> bool:
        query_id = opt_str(params, "callback_query_id")
        if query_id is None or query_id not in self._world.open_callbacks:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._world.open_callbacks.discard(query_id)
        self._world.callback_answers.append(
            {
                "callback_query_id": query_id,
                "text": opt_str(params, "text"),
                "show_alert": as_bool(params.get("show_alert", False)),
                "url": opt_str(params, "url"),
            }
        )
        return True

    # ------------------------------------------------------------------ checks and records

    @staticmethod
    def _markup(params: Params) -> _Markup:
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
        target = self._world.messages.get((chat_id, reply_id))
        if target is None:
            if allow_missing:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return target.quoted()

    def _caption(self, params: Params) -> str | None:
        caption = opt_str(params, "caption")
        if caption is not None and len(caption) > _MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        return caption

    def _source_message(self, params: Params, verb: str) -> Msg:
        from_chat = self._world.chat_param(params, "from_chat_id")
        message_id = as_int(params.get("message_id"), "message_id")
        source = self._world.messages.get((from_chat, message_id))
        if source is None:
            raise ApiError(400, f"Bad Request: message to {verb} not found")
        return source

    @staticmethod
    def _content_of(source: Msg) -> JSONDict:
        return {key: source.data[key] for key in _CONTENT_KEYS if key in source.data}

    def _bot_message(
        self,
        chat_id: int,
        content: JSONDict,
        *,
        kind: str,
        text: str | None,
        markup: _Markup = (None, None),
        reply_to: JSONDict | None = None,
        file: StoredFile | None = None,
        parse_mode: str | None = None,
    ) -> Msg:
        """Store a new message of the bot in the chat and record it as sent."""
        date = now()
        message_id = self._world.alloc_message_id(chat_id)
        data: JSONDict = {
            "message_id": message_id,
            "from": self._world.bot_user,
            "chat": self._world.chats[chat_id],
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
            reply_to_message_id=reply_to["message_id"] if reply_to is not None else None,
        )
        msg = Msg(data, True, self._world.bot_id, sent=sent, file=file)
        self._world.messages[(chat_id, message_id)] = msg
        self._world.record_sent(sent)
        return msg

    def _editable(self, params: Params) -> Msg:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not supported here")
        chat_id = self._world.writable_chat(params)
        raw_id = params.get("message_id")
        if raw_id is None or raw_id == "":
            raise ApiError(400, "Bad Request: message identifier is not specified")
        msg = self._world.messages.get((chat_id, as_int(raw_id, "message_id")))
        if msg is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not msg.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        return msg

    def _apply_edit(
        self, msg: Msg, key: str | None, value: str | None, inline: JSONDict | None
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
            self._world.on_change(sent)
        return msg.data
