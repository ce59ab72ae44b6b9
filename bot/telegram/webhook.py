"""Webhook mode: Telegram posts updates to us instead of us polling it.

Our own small aiohttp server, not python-telegram-bot's (``Updater.start_webhook``), because
PTB answers 200 and queues the update *before* any handler runs, and Telegram never sends again
an update it got a 200 for: a process killed at that moment loses it. Here:

- the ``X-Telegram-Bot-Api-Secret-Token`` header is checked (in constant time) before the body
  is read: a stranger's request costs nothing and gets 403 (webhook mode refuses to start
  without a secret: an open webhook would let anyone write as any patient);
- a body above :data:`MAX_BODY` gets 413 (Telegram's updates are a few kilobytes);
- malformed JSON, or JSON that is not an update, gets 400, logged without the body;
- a good update is answered **200 only once it is handled and committed** (or set aside as a
  dead letter), 503 if that takes longer than :data:`ANSWER_WITHIN` (the database is down):
  Telegram delivers it again, and the intake runs a redelivery still in flight only once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.config import EXPECTED, Settings
from bot.errors import ConfigError
from bot.telegram.intake import UpdateIntake

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
#: Larger bodies are refused with 413; Telegram's updates are far smaller.
MAX_BODY = 1024 * 1024
#: Telegram waits about a minute for an answer; answer 503 before it gives up on us.
ANSWER_WITHIN = 45.0


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


class WebhookServer:
    """Receives Telegram's posts and answers only once each update is done."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        intake: UpdateIntake,
        plan: WebhookPlan,
    ) -> None:
        self._application = application
        self._intake = intake
        self._plan = plan
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        """True while the server listens."""
        return self._runner is not None

    async def start(self) -> None:
        """Listen, then tell Telegram where to post (the application must be started)."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(f"/{self._plan.url_path}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._plan.host, self._plan.port).start()
        await self._application.bot.set_webhook(
            url=self._plan.url,
            secret_token=self._plan.secret,
            allowed_updates=Update.ALL_TYPES,
            drop_pending_updates=False,
        )
        log.info("webhook_listening", port=self._plan.port)

    async def stop(self) -> None:
        """Stop listening (Telegram keeps what we did not answer 200 and posts it again)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._plan.secret.encode()):
            return web.Response(status=403)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return web.Response(status=413)
        try:
            raw = json.loads(body)
        except ValueError:
            log.warning("webhook_bad_request", reason="malformed JSON", size=len(body))
            return web.Response(status=400)
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            log.warning("webhook_bad_request", reason="not an update", size=len(body))
            return web.Response(status=400)
        done = self._intake.submit(raw)
        try:
            await asyncio.wait_for(asyncio.shield(done), ANSWER_WITHIN)
        except TimeoutError:
            return web.Response(status=503)
        except asyncio.CancelledError:
            if done.cancelled():  # the intake is closing: Telegram will post it again
                return web.Response(status=503)
            raise
        return web.Response(status=200)
