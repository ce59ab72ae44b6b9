"""The fake Bot API server, driven through the real python-telegram-bot stack (no monkeypatching).

Each test talks HTTP to a real loopback server with ``telegram.Bot`` or a polling
``telegram.ext.Application``, so what passes here is what the bot will see in its own tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageId,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.sandbox.fake_api import TINY_PNG, FakeTelegramServer, SentMessage

USER = 1001
OTHER = 1002
STAFF = -1001234567890
REPO_ROOT = Path(__file__).resolve().parents[2]


def keyboard(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=f"a:7:pain:{label}") for label in labels]]
    )


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 deprecates the int form
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def send_until_limited(bot: Bot, chat_ids: list[int]) -> RetryAfter:
    """Send one message per chat id until flood control answers; fail if it never does."""
    for chat_id in chat_ids:
        try:
            await bot.send_message(chat_id, "spam")
        except RetryAfter as exc:
            return exc
    raise AssertionError(f"{len(chat_ids)} messages went through without a 429")


async def send_concurrently(bot: Bot, chat_ids: list[int]) -> list[BaseException | None]:
    """Fire one message per chat id at once, so refill during the burst is negligible."""

    async def send(chat_id: int) -> None:
        await bot.send_message(chat_id, "spam")

    return await asyncio.gather(*(send(c) for c in chat_ids), return_exceptions=True)


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    srv = FakeTelegramServer()
    await srv.start()
    srv.add_user(USER, first_name="Alice", username="alice")
    srv.add_user(OTHER, first_name="Bob")
    srv.add_group(STAFF, title="Staff IR")
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    async with Bot(
        server.bot_token, base_url=server.api_base_url, base_file_url=server.file_base_url
    ) as tg_bot:
        yield tg_bot


@contextlib.asynccontextmanager
async def polling_app(server: FakeTelegramServer, *handlers: Any) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    app = (
        Application.builder()
        .token(server.bot_token)
        .base_url(server.api_base_url)
        .base_file_url(server.file_base_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=1, poll_interval=0)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


# ---------------------------------------------------------------------- basics


async def test_get_me_describes_the_bot(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == "cryo_followup_bot"
    assert me.id == 123456
    assert me.can_join_groups
    assert bot.username == "cryo_followup_bot"


async def test_send_message_with_inline_keyboard_is_recorded(
    server: FakeTelegramServer, bot: Bot
) -> None:
    message = await bot.send_message(USER, "Douleur ?", reply_markup=keyboard("0", "5", "10"))
    assert message.chat.type == "private"
    assert message.chat.id == USER
    assert message.from_user is not None
    assert message.from_user.is_bot
    assert abs(message.date.timestamp() - time.time()) < 5  # seconds, not milliseconds
    assert message.reply_markup is not None
    second = await bot.send_message(USER, "Merci", reply_parameters=ReplyParameters(1))
    assert second.message_id == message.message_id + 1
    assert second.reply_to_message is not None
    assert second.reply_to_message.text == "Douleur ?"

    [first, _] = server.sent(USER)
    assert first.kind == "text"
    assert first.text == "Douleur ?"
    assert first.buttons() == [("0", "a:7:pain:0"), ("5", "a:7:pain:5"), ("10", "a:7:pain:10")]
    assert first.button_data("10") == "a:7:pain:10"
    with pytest.raises(LookupError, match="'0', '5', '10'"):
        first.button_data("zzz")
    assert server.sent(OTHER) == []
    assert server.request_log[-1] == ("sendMessage", 200)


async def test_telegram_validation_errors(server: FakeTelegramServer, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(999_999, "hello?")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "x" * 4097)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "q", reply_markup=too_long)
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(USER, "q", reply_to_message_id=77)
    with pytest.raises(BadRequest, match=r"(?i)not implemented"):
        await bot.do_api_request("frobnicate")
    assert server.sent() == []
    assert server.request_log[-1] == ("frobnicate", 400)


async def test_wrong_token_is_invalid_token(server: FakeTelegramServer) -> None:
    stranger = Bot("999:NOPE", base_url=server.api_base_url)
    try:
        with pytest.raises(InvalidToken):
            await stranger.initialize()
    finally:
        await stranger.shutdown()
    assert server.request_log[-1] == ("getMe", 401)


# ---------------------------------------------------------------------- updates through PTB


async def test_text_and_command_reach_handlers_by_long_polling(
    server: FakeTelegramServer,
) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"started {' '.join(context.args or [])}")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        assert update.effective_chat is not None
        assert update.effective_chat.type == "private"
        await update.effective_message.reply_text(f"echo {update.effective_message.text}")

    async with polling_app(
        server,
        CommandHandler("start", start),
        MessageHandler(filters.TEXT & ~filters.COMMAND, echo),
    ):
        polls_before = sum(1 for method, _ in server.request_log if method == "getUpdates")
        server.send_text(USER, "/start tok3n")
        reply = await server.wait_for(lambda m: m.text == "started tok3n", timeout=5)
        assert reply.chat_id == USER
        server.send_text(USER, "bonjour")
        await server.wait_for(lambda m: m.text == "echo bonjour", timeout=5)
        polls = sum(1 for method, _ in server.request_log if method == "getUpdates")
        assert polls - polls_before <= 6  # long polling, not a busy loop


async def test_button_press_reaches_callback_handler(server: FakeTelegramServer, bot: Bot) -> None:
    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        assert query.message is not None
        assert query.message.chat.type == "private"
        await query.answer("Noté")
        await query.edit_message_text(f"Réponse : {query.data}")

    question = await bot.send_message(USER, "Douleur ?", reply_markup=keyboard("0", "5"))
    async with polling_app(server, CallbackQueryHandler(on_button)):
        sent = server.sent(USER)[0]
        update = server.press_button(USER, question.message_id, sent.button_data("5"))
        assert update["callback_query"]["message"]["text"] == "Douleur ?"
        edited = await server.wait_for(lambda m: m.edits == 1, timeout=5)
    assert edited.text == "Réponse : a:7:pain:5"
    assert edited.buttons() == []  # editMessageText without reply_markup drops the keyboard
    assert server.callback_answers == [
        {
            "callback_query_id": update["callback_query"]["id"],
            "text": "Noté",
            "show_alert": False,
            "url": None,
        }
    ]
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(update["callback_query"]["id"])


async def test_get_updates_offset_limit_redelivery_and_allowed_updates(
    server: FakeTelegramServer, bot: Bot
) -> None:
    first = server.send_text(USER, "un")
    server.send_text(USER, "deux")
    server.send_text(OTHER, "trois")
    assert len(await bot.get_updates(limit=2, timeout=0)) == 2
    updates = await bot.get_updates(timeout=0)  # nothing confirmed yet: all three
    assert [u.message.text for u in updates if u.message] == ["un", "deux", "trois"]
    last = updates[-1].update_id
    assert await bot.get_updates(offset=last + 1, timeout=0) == ()  # confirmed and dropped

    again = server.redeliver(first["update_id"])
    assert again["update_id"] == first["update_id"]
    redelivered = await bot.get_updates(offset=last + 1, timeout=0)
    assert [u.update_id for u in redelivered] == [first["update_id"]]
    assert redelivered[0].message is not None
    assert redelivered[0].message.text == "un"
    assert await bot.get_updates(offset=last + 1, timeout=0) == ()

    server.send_text(USER, "ignored")
    message = await bot.send_message(USER, "Q?", reply_markup=keyboard("1"))
    server.press_button(USER, message.message_id, "a:7:pain:1")
    only_buttons = await bot.get_updates(
        offset=last + 1, timeout=0, allowed_updates=["callback_query"]
    )
    assert [u.callback_query.data for u in only_buttons if u.callback_query] == ["a:7:pain:1"]
    await bot.get_updates(offset=only_buttons[-1].update_id + 1, timeout=0, allowed_updates=[])


async def test_long_poll_waits_and_wakes_on_update(server: FakeTelegramServer, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=dtm.timedelta(seconds=0.3)) == ()
    assert time.monotonic() - started >= 0.25

    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    server.send_text(USER, "réveil")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1
    assert updates[0].message is not None
    assert updates[0].message.text == "réveil"


async def test_second_poller_terminates_the_first(server: FakeTelegramServer, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    async with Bot(server.bot_token, base_url=server.api_base_url) as twin:
        assert await twin.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
        await asyncio.wait_for(poll, 2)


async def test_user_media_and_edits_parse_in_ptb(server: FakeTelegramServer, bot: Bot) -> None:
    photo = server.send_photo(USER, caption="genou")
    server.send_voice(USER, duration=4)
    server.send_video(USER)
    server.send_sticker(USER, emoji="😀")
    server.send_document(USER, file_name="ordonnance.pdf", file_bytes=b"%PDF-1.4 rx")
    server.send_location(USER, latitude=45.0, longitude=5.0)
    server.edit_text(USER, server.send_text(USER, "douleur 3")["message"]["message_id"], "4")
    server.send_text(USER, "/aide", chat_id=STAFF)
    updates = await bot.get_updates(timeout=0)
    messages = [u.message for u in updates if u.message]
    assert messages[0].photo
    assert messages[0].caption == "genou"
    assert messages[1].voice is not None
    assert messages[1].voice.to_dict()["duration"] == 4
    assert messages[2].video is not None
    assert messages[3].sticker is not None
    assert messages[3].sticker.emoji == "😀"
    assert messages[4].document is not None
    assert messages[4].document.file_name == "ordonnance.pdf"
    assert messages[5].location is not None
    assert messages[5].location.latitude == 45.0
    edited = [u.edited_message for u in updates if u.edited_message]
    assert edited[0].text == "4"
    assert edited[0].edit_date is not None
    group_message = messages[-1]
    assert group_message.chat.type == "supergroup"
    assert group_message.chat.id == STAFF
    assert group_message.text == "/aide"
    assert group_message.entities[0].type == "bot_command"
    file = await bot.get_file(photo["message"]["photo"][-1]["file_id"])
    assert bytes(await file.download_as_bytearray()) == TINY_PNG


# ---------------------------------------------------------------------- edits, deletes, files


async def test_edit_message_text_and_markup(server: FakeTelegramServer, bot: Bot) -> None:
    message = await bot.send_message(USER, "Q1", reply_markup=keyboard("oui", "non"))
    edited = await bot.edit_message_text(
        "Q1 ✓", chat_id=USER, message_id=message.message_id, reply_markup=keyboard("oui")
    )
    assert not isinstance(edited, bool)
    assert edited.text == "Q1 ✓"
    assert edited.edit_date is not None
    [record] = server.sent(USER)
    assert record.edits == 1
    assert record.text == "Q1 ✓"
    assert record.buttons() == [("oui", "a:7:pain:oui")]

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "Q1 ✓", chat_id=USER, message_id=message.message_id, reply_markup=keyboard("oui")
        )
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)
    user_message = server.send_text(USER, "mine")["message"]["message_id"]
    with pytest.raises(BadRequest, match=r"(?i)can't be edited"):
        await bot.edit_message_text("x", chat_id=USER, message_id=user_message)

    cleared = await bot.edit_message_reply_markup(chat_id=USER, message_id=message.message_id)
    assert not isinstance(cleared, bool)
    assert cleared.reply_markup is None
    assert record.edits == 2
    assert record.buttons() == []
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=message.message_id)

    assert await bot.delete_message(USER, message.message_id) is True
    assert record.deleted
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, message.message_id)


async def test_photo_and_document_round_trip(server: FakeTelegramServer, bot: Bot) -> None:
    photo = await bot.send_photo(USER, photo=TINY_PNG, caption="Votre genou")
    pdf = b"%PDF-1.4 compte rendu"
    document = await bot.send_document(STAFF, document=pdf, filename="cr.pdf", caption="CR")
    assert document.chat.type == "supergroup"
    assert document.document is not None
    assert document.document.file_name == "cr.pdf"

    photo_record, doc_record = server.sent()
    assert (photo_record.kind, photo_record.text, photo_record.file_bytes) == (
        "photo",
        "Votre genou",
        TINY_PNG,
    )
    assert (doc_record.kind, doc_record.file_name, doc_record.file_bytes) == (
        "document",
        "cr.pdf",
        pdf,
    )
    for file_id, expected in (
        (photo.photo[-1].file_id, TINY_PNG),
        (document.document.file_id, pdf),
    ):
        file = await bot.get_file(file_id)
        assert bytes(await file.download_as_bytearray()) == expected

    again = await bot.send_document(USER, document=document.document.file_id)
    assert again.document is not None
    assert again.document.file_unique_id == document.document.file_unique_id
    assert server.sent(USER)[-1].file_bytes == pdf
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(USER, photo="not-a-file-id")
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


async def test_forward_and_copy_to_staff_group(server: FakeTelegramServer, bot: Bot) -> None:
    text_id = server.send_text(USER, "J'ai très mal")["message"]["message_id"]
    photo_id = server.send_photo(USER, file_bytes=b"jpeg-bytes")["message"]["message_id"]
    forwarded = await bot.forward_message(STAFF, from_chat_id=USER, message_id=text_id)
    assert forwarded.chat.type == "supergroup"
    assert forwarded.chat.id == STAFF
    assert forwarded.text == "J'ai très mal"
    assert forwarded.forward_origin is not None
    copy = await bot.copy_message(
        STAFF, from_chat_id=USER, message_id=photo_id, caption="Photo patient"
    )
    assert isinstance(copy, MessageId)
    fwd, copied = server.sent(STAFF)
    assert (fwd.kind, fwd.text) == ("forward", "J'ai très mal")
    assert (copied.kind, copied.text, copied.file_bytes) == ("copy", "Photo patient", b"jpeg-bytes")
    assert copied.message_id == copy.message_id
    with pytest.raises(BadRequest, match=r"(?i)message to forward not found"):
        await bot.forward_message(STAFF, from_chat_id=USER, message_id=999)


async def test_misc_methods(server: FakeTelegramServer, bot: Bot) -> None:
    commands = [BotCommand("start", "Commencer"), BotCommand("aide", "Aide")]
    assert await bot.set_my_commands(commands, language_code="fr")
    assert await bot.get_my_commands(language_code="fr") == tuple(commands)
    assert await bot.get_my_commands() == ()
    assert await bot.delete_my_commands(language_code="fr")
    assert await bot.set_chat_menu_button()
    assert await bot.send_chat_action(USER, "typing")
    chat = await bot.get_chat(USER)
    assert (chat.type, chat.first_name, chat.username) == ("private", "Alice", "alice")
    group = await bot.get_chat(STAFF)
    assert (group.type, group.title) == ("supergroup", "Staff IR")
    info = await bot.get_webhook_info()
    assert info.url == ""
    assert info.pending_update_count == 0
    assert await bot.close()


# ---------------------------------------------------------------------- faults and limits


async def test_blocked_user_gets_forbidden_until_they_write_again(
    server: FakeTelegramServer, bot: Bot
) -> None:
    server.block_bot(USER)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(USER, "Rappel")
    await bot.send_message(OTHER, "ok")  # other chats are unaffected
    server.unblock_bot(USER)
    await bot.send_message(USER, "Rappel")
    server.block_bot(USER)
    server.send_text(USER, "/start")  # writing to the bot again means it was restarted
    await bot.send_message(USER, "Bon retour")
    assert [m.text for m in server.sent(USER)] == ["Rappel", "Bon retour"]


async def test_injected_429_then_recovers(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject_fault("429", chat_id=USER, retry_after=7)
    await bot.send_message(OTHER, "not targeted")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER, "Q")
    assert retry_seconds(caught.value) == 7
    await bot.send_message(USER, "Q")  # count=1: the next call goes through
    assert server.request_log[-3:] == [
        ("sendMessage", 200),
        ("sendMessage", 429),
        ("sendMessage", 200),
    ]


async def test_injected_server_errors_are_network_errors(
    server: FakeTelegramServer, bot: Bot
) -> None:
    server.inject_fault("500", count=2)
    server.inject_fault("502", method="editMessageText")
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(USER, "x")
    message = await bot.send_message(USER, "x")
    with pytest.raises(NetworkError):
        await bot.edit_message_text("y", chat_id=USER, message_id=message.message_id)
    server.inject_fault("403", count=None)
    server.inject_fault("400_chat_not_found", method="sendChatAction")
    with pytest.raises(Forbidden):
        await bot.send_message(OTHER, "x")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_chat_action(USER, "typing")
    server.clear_faults()
    await bot.send_message(OTHER, "x")


async def test_timed_window_fault(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject_fault("500", seconds=0.2)
    for _ in range(3):
        with pytest.raises(NetworkError):
            await bot.send_message(USER, "x")
    await asyncio.sleep(0.25)
    await bot.send_message(USER, "x")


async def test_drop_delivers_but_client_sees_an_error(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject_fault("drop", chat_id=USER)
    with pytest.raises(NetworkError):
        await bot.send_message(USER, "Rappel J7")
    [delivered] = server.sent(USER)
    assert delivered.text == "Rappel J7"
    assert server.request_log[-1] == ("sendMessage", 0)
    await bot.send_message(USER, "suite")  # the connection pool recovers


async def test_timeout_fault_is_not_applied(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject_fault("timeout")
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "lent", read_timeout=0.3)
    assert server.sent() == []
    await bot.send_message(USER, "ok")


async def test_latency_is_added(server: FakeTelegramServer, bot: Bot) -> None:
    server.latency = 0.2
    started = time.monotonic()
    await bot.send_message(USER, "x")
    assert time.monotonic() - started >= 0.2


async def test_rate_limits_when_enforced(server: FakeTelegramServer, bot: Bot) -> None:
    server.enforce_limits = True
    private_burst = await send_until_limited(bot, [USER] * 10)
    assert retry_seconds(private_burst) >= 1
    assert 1 <= len(server.sent(USER)) < 10

    group_burst = await send_concurrently(bot, [STAFF] * 25)
    assert 20 <= group_burst.count(None) < 25
    limited = [r for r in group_burst if isinstance(r, RetryAfter)]
    assert retry_seconds(limited[0]) >= 2  # 20 per minute: a token every 3 s
    assert server.request_log[-1] == ("sendMessage", 429)


async def test_global_rate_limit(server: FakeTelegramServer, bot: Bot) -> None:
    server.enforce_limits = True
    # A slow refill keeps the test independent of how fast this machine sends 40 requests.
    server.GLOBAL_RATE = 0.5
    for user_id in range(2000, 2040):
        server.add_user(user_id)
    results = await send_concurrently(bot, list(range(2000, 2040)))
    assert any(isinstance(r, RetryAfter) for r in results)
    assert 30 <= len(server.sent()) < 40


# ---------------------------------------------------------------------- webhook


async def test_webhook_delivery_with_secret_and_retry(server: FakeTelegramServer, bot: Bot) -> None:
    received: asyncio.Queue[tuple[str | None, dict[str, Any]]] = asyncio.Queue()
    statuses = [500]  # the receiver fails once, then accepts

    async def receive(request: web.Request) -> web.Response:
        body = await request.json()
        if statuses:
            return web.Response(status=statuses.pop(0))
        await received.put((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr3t-tok")
        first = server.send_text(USER, "via webhook")
        second = server.send_text(USER, "et encore")
        for expected in (first, second):
            secret, body = await asyncio.wait_for(received.get(), 5)
            assert secret == "s3cr3t-tok"
            assert body == expected
        with pytest.raises(Conflict, match=r"(?i)webhook is active"):
            await bot.get_updates(timeout=0)
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook")
        assert info.last_error_message is not None
        assert server.stats()["webhook_deliveries"] == 2
        assert await bot.delete_webhook()
        server.send_text(USER, "polling again")
        updates = await bot.get_updates(timeout=0)
        assert [u.message.text for u in updates if u.message] == ["polling again"]
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------- control side


async def test_http_control_side(server: FakeTelegramServer, bot: Bot) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as http:

        async def control(action: str, **body: Any) -> Any:
            async with http.post(f"/_control/{action}", json=body) as resp:
                payload = await resp.json()
                assert resp.status == 200, payload
                return payload["result"]

        await control("add_user", user_id=3000, first_name="Chloé", language_code="fr")
        await control("add_group", chat_id=-42, title="Petit groupe", type="group")
        update = await control("send_text", user_id=3000, text="/start abc")
        [received] = await bot.get_updates(timeout=0)
        assert received.update_id == update["update_id"]
        assert received.message is not None
        assert received.message.text == "/start abc"

        question = await bot.send_message(3000, "Q?", reply_markup=keyboard("3"))
        await bot.send_message(-42, "groupe")
        await control("press_button", user_id=3000, message_id=question.message_id, data="x")
        await control("inject_fault", kind="403", chat_id=3000)
        with pytest.raises(Forbidden):
            await bot.send_message(3000, "x")
        await control("clear_faults")
        await control("set_latency", seconds=0.0)
        await control("set_enforce_limits", enabled=False)
        await control("send_photo", user_id=3000, file_bytes_b64="AAEC")

        async with http.get("/_control/sent", params={"chat_id": "3000"}) as resp:
            sent = (await resp.json())["result"]
        assert [m["text"] for m in sent] == ["Q?"]
        assert sent[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a:7:pain:3"
        async with http.get("/_control/wait_for_count", params={"n": "2", "timeout": "1"}) as resp:
            assert len((await resp.json())["result"]) == 2
        async with http.get("/_control/stats") as resp:
            stats = (await resp.json())["result"]
        assert stats["messages_sent"] == 2
        assert stats["per_chat"] == {"3000": 1, "-42": 1}
        assert stats["status_codes"]["403"] == 1
        assert stats["updates_queued"] == 3

        async with http.post("/_control/explode", json={}) as resp:
            assert resp.status == 400
        async with http.post("/_control/send_text", json={"user_id": 1}) as resp:
            assert resp.status == 400  # missing argument


async def test_wait_for_reports_what_was_sent(server: FakeTelegramServer, bot: Bot) -> None:
    await bot.send_message(USER, "Bonjour", reply_markup=keyboard("ok"))
    with pytest.raises(TimeoutError, match=r"text='Bonjour' buttons=\['ok'\]"):
        await server.wait_for(lambda m: m.text == "Au revoir", timeout=0.1)
    later = asyncio.create_task(server.wait_for(lambda m: m.text == "Au revoir", timeout=2))
    counted = asyncio.create_task(server.wait_for_count(2, chat_id=USER, timeout=2))
    await asyncio.sleep(0)
    await bot.send_message(USER, "Au revoir")
    found: SentMessage = await later
    assert found.message_id == 2
    assert [m.text for m in await counted] == ["Bonjour", "Au revoir"]
    with pytest.raises(TimeoutError, match=r"(?i)expected 5 sent messages"):
        await server.wait_for_count(5, timeout=0.05)


async def test_module_runs_standalone() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox.fake_api",
        "--port",
        "0",
        cwd=REPO_ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        url = ""
        async with asyncio.timeout(10):
            while not url:
                line = (await process.stderr.readline()).decode()
                assert line, "server exited before logging its URL"
                if "fake Telegram Bot API on " in line:
                    url = line.split("fake Telegram Bot API on ", 1)[1].split()[0]
        async with aiohttp.ClientSession() as http, http.get(f"{url}/bot123456:TEST/getMe") as resp:
            payload = await resp.json()
        assert payload["ok"]
        assert payload["result"]["is_bot"]
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 5) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
