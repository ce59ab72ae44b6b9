"""Webhook mode: Telegram posts updates to us instead of us polling it.

python-telegram-bot's own webhook server (``Updater.start_webhook``) answers 403 to any request
whose ``X-Telegram-Bot-Api-Secret-Token`` header is missing or differs from ``WEBHOOK_SECRET``, so
nobody who merely learns the URL can inject updates. Webhook mode refuses to start without a
secret: an open webhook would let anyone write as any patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telegram import Update
from telegram.ext import Application

from bot.config import EXPECTED, Settings
from bot.errors import ConfigError


@dataclass(frozen=True)
class WebhookPlan:
    """Where to listen and what to tell Telegram, validated from the settings."""

    host: str
    port: int
    url_path: str
    url: str
    secret: str


def _invalid(variable: str) -> ConfigError:
    return ConfigError(f"{variable} is invalid: expected {EXPECTED[variable]}")


def plan_webhook(settings: Settings) -> WebhookPlan:
    """Check the webhook settings before anything starts; one clear line when one is wrong."""
    if not settings.webhook_url:
        raise ConfigError("WEBHOOK_URL is required by --webhook: " + EXPECTED["WEBHOOK_URL"])
    if not settings.webhook_secret:
        raise ConfigError("WEBHOOK_SECRET is required by --webhook: " + EXPECTED["WEBHOOK_SECRET"])
    parts = urlsplit(settings.webhook_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid("WEBHOOK_URL")
    host, _, port = settings.webhook_listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _invalid("WEBHOOK_LISTEN")
    return WebhookPlan(
        host=host.strip("[]"),
        port=int(port),
        url_path=parts.path.strip("/"),
        url=settings.webhook_url,
        secret=settings.webhook_secret,
    )


async def start_webhook(
    application: Application[Any, Any, Any, Any, Any, Any], plan: WebhookPlan
) -> None:
    """Register the webhook with Telegram and serve it (the application must be started)."""
    assert application.updater is not None
    await application.updater.start_webhook(
        listen=plan.host,
        port=plan.port,
        url_path=plan.url_path,
        webhook_url=plan.url,
        secret_token=plan.secret,
        allowed_updates=Update.ALL_TYPES,
        drop_pending_updates=False,
    )
