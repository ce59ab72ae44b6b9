"""Which arriving update is urgent, read from the update alone (no query): the intake's hook.

The reading itself is :mod:`bot.domain.urgency` (the protocols' urgent flags and thresholds).
Here: what of an update it reads (a patient's text, edit, caption or button data, in a private
chat), and the open question of each chat, remembered as the messenger sends it
(:class:`AskedQuestions`), so that a "9" is read against the question it answers.
"""

from __future__ import annotations

from collections import OrderedDict

from telegram import Update
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
    """``reader(update)``: True when the update reports something urgent (the intake's hook)."""

    def __init__(self, rules: UrgencyRules, asked: AskedQuestions) -> None:
        self._rules = rules
        self._asked = asked

    def __call__(self, update: Update) -> bool:
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return False
        open_question = self._asked.get(chat.id)
        query = update.callback_query
        if query is not None:
            return bool(query.data) and self._rules.press_is_urgent(
                query.data or "", open_question=open_question
            )
        message = update.message or update.edited_message
        if message is None:
            return False
        text = message.text or message.caption
        if not text or text.startswith("/"):
            return False
        return self._rules.text_is_urgent(text, open_question=open_question)
