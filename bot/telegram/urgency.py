"""Which arriving update is urgent, read from its JSON alone (no query, no parsing): the
intake's hook.

The reading itself is :mod:`bot.domain.urgency` (the protocols' urgent flags and thresholds).
Here: what of an update it reads (a patient's text, edit, caption or button data, in a private
chat), and the open question of each chat, remembered as the messenger sends it
(:class:`AskedQuestions`), so that a "9" is read against the question it answers.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from telegram.constants import ChatType

from bot.domain.urgency import UrgencyRules

#: Chats whose last question is remembered (the oldest is forgotten first).
REMEMBERED = 100_000


class AskedQuestions:
    """The question id this process last asked each chat (a hint: None when unknown)."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._size = size
        self._asked: OrderedDict[int, str] = OrderedDict()

    def asked(self, chat_id: int, question_id: str) -> None:
        """The messenger sent ``chat_id`` the question ``question_id``."""
        self._asked[chat_id] = question_id
        self._asked.move_to_end(chat_id)
        if len(self._asked) > self._size:
            self._asked.popitem(last=False)

    def get(self, chat_id: int) -> str | None:
        """The chat's open question, when this process asked it."""
        return self._asked.get(chat_id)


class UrgencyReader:
    """``reader(raw)``: True when the update (Telegram's JSON, before python-telegram-bot
    parses it) reports something urgent (the intake's hook)."""

    def __init__(self, rules: UrgencyRules, asked: AskedQuestions) -> None:
        self._rules = rules
        self._asked = asked

    def __call__(self, raw: dict[str, Any]) -> bool:
        query = raw.get("callback_query")
        if isinstance(query, dict):
            chat = _private_chat(query.get("message"))
            data = query.get("data")
            if chat is None or not isinstance(data, str) or not data:
                return False
            return self._rules.press_is_urgent(data, open_question=self._asked.get(chat))
        message = raw.get("message") or raw.get("edited_message")
        chat = _private_chat(message)
        if chat is None:
            return False
        assert isinstance(message, dict)
        text = message.get("text") or message.get("caption")
        if not isinstance(text, str) or not text or text.startswith("/"):
            return False
        return self._rules.text_is_urgent(text, open_question=self._asked.get(chat))


def _private_chat(message: object) -> int | None:
    """The id of the private chat ``message`` (a JSON object) is in, or None."""
    chat = message.get("chat") if isinstance(message, dict) else None
    if not isinstance(chat, dict) or chat.get("type") != ChatType.PRIVATE:
        return None
    chat_id = chat.get("id")
    return chat_id if isinstance(chat_id, int) else None
