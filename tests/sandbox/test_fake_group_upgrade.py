"""The fake server's group upgrade (a basic group becomes a supergroup with a new id), seen
through python-telegram-bot: the old id answers ChatMigrated with the new one, as Telegram does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.error import ChatMigrated

from bot.sandbox.fake_api import FakeTelegramServer

GROUP = -4000000001
SUPERGROUP = -1004000000001


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    srv = FakeTelegramServer()
    await srv.start()
    srv.add_group(GROUP, title="Staff", type_="group")
    try:
        yield srv
    finally:
        await srv.stop()


async def test_an_upgraded_group_answers_chat_migrated_with_the_supergroups_id(
    server: FakeTelegramServer,
) -> None:
    async with Bot(server.bot_token, base_url=server.api_base_url) as bot:
        await bot.send_message(GROUP, "before")
        server.upgrade_group(GROUP, new_chat_id=SUPERGROUP)
        for call in (
            lambda: bot.send_message(GROUP, "after"),
            lambda: bot.get_chat(GROUP),
            lambda: bot.get_chat_member(GROUP, bot.id),
        ):
            with pytest.raises(ChatMigrated) as raised:
                await call()
            assert raised.value.new_chat_id == SUPERGROUP
        chat = await bot.get_chat(SUPERGROUP)
        assert (chat.type, chat.title) == ("supergroup", "Staff")
        await bot.send_message(SUPERGROUP, "in the supergroup")
    assert [m.text for m in server.sent(GROUP)] == ["before"]
    assert [m.text for m in server.sent(SUPERGROUP)] == ["in the supergroup"]


def test_only_a_basic_group_can_be_upgraded(server: FakeTelegramServer) -> None:
    server.upgrade_group(GROUP, new_chat_id=SUPERGROUP)
    with pytest.raises(ValueError, match="already a supergroup"):
        server.upgrade_group(SUPERGROUP, new_chat_id=-1004000000002)
