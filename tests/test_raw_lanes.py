"""The intake reads an update's lane and urgency from Telegram's JSON, before parsing it (a
batch is handed on without building 100 python-telegram-bot objects). The lane must be the one
python-telegram-bot's parsed update names (its chat, else its user), or one chat's updates
could run out of order."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update

from bot.telegram.intake import raw_lane_key

USER = {"id": 4242, "is_bot": False, "first_name": "P"}
PRIVATE = {"id": 4242, "type": "private", "first_name": "P"}
GROUP = {"id": -100777, "type": "supergroup", "title": "Équipe"}
MESSAGE = {"message_id": 7, "date": 1_760_000_000, "chat": PRIVATE, "from": USER, "text": "9"}

SAMPLES: list[dict[str, Any]] = [
    {"update_id": 1, "message": MESSAGE},
    {"update_id": 2, "edited_message": {**MESSAGE, "edit_date": 1_760_000_100}},
    {"update_id": 3, "message": {**MESSAGE, "chat": GROUP, "text": "/alerts"}},
    {
        "update_id": 4,
        "callback_query": {
            "id": "q1",
            "from": USER,
            "chat_instance": "c",
            "data": "a:12:pain_avg:9",
            "message": MESSAGE,
        },
    },
    {  # a button of an inline message: no message, the user's lane
        "update_id": 5,
        "callback_query": {"id": "q2", "from": USER, "chat_instance": "c", "data": "x"},
    },
    {
        "update_id": 6,
        "my_chat_member": {
            "chat": GROUP,
            "from": USER,
            "date": 1_760_000_000,
            "old_chat_member": {"status": "member", "user": USER},
            "new_chat_member": {"status": "left", "user": USER},
        },
    },
]


def _ptb_lane(raw: dict[str, Any]) -> object:
    update = Update.de_json(raw, None)  # type: ignore[arg-type]
    if update.effective_chat is not None:
        return update.effective_chat.id
    assert update.effective_user is not None
    return ("user", update.effective_user.id)


@pytest.mark.parametrize("raw", SAMPLES, ids=lambda raw: next(k for k in raw if k != "update_id"))
def test_the_lane_read_from_the_json_is_the_parsed_updates_lane(raw: dict[str, Any]) -> None:
    assert raw_lane_key(raw) == _ptb_lane(raw)


def test_a_kind_not_read_from_the_json_is_left_to_python_telegram_bot() -> None:
    poll = {"update_id": 9, "poll": {"id": "p", "question": "?", "options": []}}
    assert raw_lane_key(poll) is None
    assert raw_lane_key({"update_id": 10, "message": {"chat": "not an object"}}) is None
