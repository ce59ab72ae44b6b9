"""A fake Telegram Bot API server on loopback (see :mod:`bot.sandbox.fake_api.server`)."""

from bot.sandbox.fake_api.server import (
    FAULT_KINDS,
    SENDING_METHODS,
    TINY_PNG,
    FakeTelegramServer,
    SentMessage,
)
from bot.sandbox.fake_api.standalone import main, serve_forever

__all__ = [
    "FAULT_KINDS",
    "SENDING_METHODS",
    "TINY_PNG",
    "FakeTelegramServer",
    "SentMessage",
    "main",
    "serve_forever",
]
