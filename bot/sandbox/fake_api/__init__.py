"""A fake Telegram Bot API server on loopback.

Tests, the demo sandbox and the benchmarks point python-telegram-bot at this server exactly as
they would point it at a self-hosted Bot API server, so the whole stack (HTTP client, JSON,
timeouts, retries, polling and webhooks) is exercised without reaching Telegram. The server also
acts as the users (text, button presses, media, edits, blocking the bot), records what the bot
sent, enforces Telegram's flood limits on request and injects faults (429, 5xx, 403, lost
connections).

Usage::

    server = FakeTelegramServer()
    await server.start()
    app = (
        Application.builder()
        .token(server.bot_token)
        .base_url(server.api_base_url)
        .base_file_url(server.file_base_url)
        .build()
    )

Everything runs on one event loop; the acting-as-user methods are synchronous and must be called
from that loop's thread. Other processes use the HTTP control side under ``/_control/``.

The parts: :mod:`.server` (the aiohttp app and :class:`FakeTelegramServer`, composing the rest),
:mod:`.bot_api` and :mod:`.messages` (the Bot API methods), :mod:`.users` (acting as users),
:mod:`.control` (reading results, faults, the HTTP control side), :mod:`.state` (users, chats,
messages), :mod:`.updates` (the update queue), :mod:`.webhook` (webhook delivery),
:mod:`.files`, :mod:`.limits` (flood limits), :mod:`.faults`, :mod:`.wire` (shared conventions)
and :mod:`.standalone` (``python -m bot.sandbox.fake_api``).
"""

from bot.sandbox.fake_api.faults import FAULT_KINDS
from bot.sandbox.fake_api.files import TINY_PNG
from bot.sandbox.fake_api.server import FakeTelegramServer
from bot.sandbox.fake_api.standalone import main, serve_forever
from bot.sandbox.fake_api.state import SentMessage
from bot.sandbox.fake_api.wire import SENDING_METHODS

__all__ = [
    "FAULT_KINDS",
    "SENDING_METHODS",
    "TINY_PNG",
    "FakeTelegramServer",
    "SentMessage",
    "main",
    "serve_forever",
]
