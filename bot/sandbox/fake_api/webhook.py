"""Webhook delivery: once setWebhook is called, the fake Telegram POSTs the queue to the bot's
URL one update at a time, in order, retrying each with a growing delay until it is accepted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from bot.sandbox.fake_api.updates import UpdateQueue
from bot.sandbox.fake_api.wire import now

logger = logging.getLogger(__name__)


class WebhookSettings(Protocol):
    """The server's knobs, read at each use so a test may change them at any time."""

    webhook_retry_delay: float  # first retry delay, doubled up to 1 s
    webhook_timeout: float


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class WebhookSender:
    """The webhook set by the bot (if any) and the task delivering to it."""

    def __init__(self, updates: UpdateQueue, settings: WebhookSettings) -> None:
        self.active: Webhook | None = None
        self.deliveries = 0
        self._updates = updates
        self._settings = settings

    def start(self, *, url: str, secret_token: str | None, max_connections: int) -> None:
        """Make this the webhook and start delivering to it (stop the previous one first)."""
        webhook = Webhook(url=url, secret_token=secret_token, max_connections=max_connections)
        webhook.task = asyncio.create_task(self._deliver(webhook))
        self.active = webhook

    async def stop_delivery(self) -> None:
        """Stop delivering; the webhook stays set (the server stops, or it is being replaced)."""
        if self.active is not None:
            await self._stop_task(self.active)

    async def remove(self) -> None:
        """deleteWebhook: no more deliveries; getUpdates works again."""
        webhook, self.active = self.active, None
        if webhook is not None:
            await self._stop_task(webhook)

    @staticmethod
    async def _stop_task(webhook: Webhook) -> None:
        task, webhook.task = webhook.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver(self, webhook: Webhook) -> None:
        """POST pending updates one at a time, in order, retrying each until it is accepted."""
        headers = {}
        if webhook.secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook.secret_token
        delay = self._settings.webhook_retry_delay
        timeout = aiohttp.ClientTimeout(total=self._settings.webhook_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                signal_ = self._updates.signal
                entry = self._updates.next_for_webhook()
                if entry is None:
                    await signal_.wait()
                    continue
                error: str | None = None
                try:
                    async with session.post(
                        webhook.url, json=entry.update, headers=headers
                    ) as resp:
                        await resp.read()
                        if not 200 <= resp.status < 300:
                            error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = f"Connection failed: {exc!r}"
                except Exception as exc:
                    # Keep delivering whatever the receiver does; Telegram never gives up.
                    logger.warning("webhook delivery to %s failed: %r", webhook.url, exc)
                    error = f"Delivery failed: {exc!r}"
                if error is None:
                    self._updates.accepted(entry)
                    self.deliveries += 1
                    delay = self._settings.webhook_retry_delay
                else:
                    webhook.last_error_date = now()
                    webhook.last_error_message = error
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
