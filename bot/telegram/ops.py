"""Operations endpoints on ``METRICS_PORT``: ``/healthz`` for the supervisor, ``/metrics`` for
Prometheus.

The gauges an operator alerts on (dispatcher lag, alerts open, the oldest unacknowledged urgent
alert, whether the bot can still post in the staff and on-call chats) are recomputed from the database at every scrape: a stuck dispatcher cannot update its own
lag, so a gauge it sets itself would hide exactly the failure it is meant to show. Nothing here
carries a label, a name or a health value: counts and ages only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from telegram.ext import Application

from bot.db.queries.checkins import oldest_unsent_due
from bot.db.queries.views import oldest_unacknowledged, unresolved_alert_count
from bot.metrics import ALERTS_OPEN, DISPATCHER_LAG, UP_SINCE, URGENT_UNACKNOWLEDGED
from bot.services import chat_health
from bot.services.context import ServiceContext

log = structlog.get_logger(__name__)

#: A health check that cannot reach the database within this time reports it down.
DATABASE_TIMEOUT = 3.0
URGENT = ("urgent", "emergency")


async def refresh_gauges(ctx: ServiceContext) -> None:
    """Recompute the database-derived gauges (called at every scrape)."""
    now = ctx.clock.now()
    async with ctx.sessions() as session:
        oldest_due = await oldest_unsent_due(session, now=now)
        open_alerts = await unresolved_alert_count(session)
        oldest_unacked = await oldest_unacknowledged(session, severities=URGENT)
    DISPATCHER_LAG.set((now - oldest_due).total_seconds() if oldest_due else 0.0)
    ALERTS_OPEN.set(open_alerts)
    URGENT_UNACKNOWLEDGED.set((now - oldest_unacked).total_seconds() if oldest_unacked else 0.0)
    await chat_health.health(ctx)  # sets cryo_staff_chat_reachable from the database


class OpsServer:
    """A small aiohttp server beside the bot; ``await start()`` then ``await stop()``."""

    def __init__(
        self,
        ctx: ServiceContext,
        application: Application[Any, Any, Any, Any, Any, Any],
        *,
        host: str = "0.0.0.0",  # noqa: S104 - Prometheus scrapes from another host
        port: int,
        receiving: Callable[[], str | None] | None = None,
        polling_role: Callable[[], str | None] | None = None,
    ) -> None:
        self._ctx = ctx
        self._application = application
        self._host = host
        self._port = port
        self._receiving = receiving
        self._polling_role = polling_role
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started with port 0)."""
        return self._port

    async def start(self) -> None:
        """Bind and serve."""
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        UP_SINCE.set(time.time())
        log.info("ops_server_started", port=self._port)

    async def stop(self) -> None:
        """Close the server."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def healthz(self, _request: web.Request) -> web.Response:
        """200 when the database answers, the bot is running (and receiving updates) and can post
        in the team chats; 503 naming what is wrong otherwise (e.g. "conflict: another process
        is polling this token", "lost: the bot was removed from the group STAFF_CHAT_ID=...").
        ``polling`` says whether this process polls (``leader``) or lets another process of the
        database poll for it (``follower``): information, not a check."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT), self._ctx.sessions() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = type(exc).__name__
        if checks["database"] == "ok":
            # The team chats as last seen: a lost one names its setting and the fix.
            try:
                checks.update(await chat_health.health(self._ctx))
            except Exception as exc:
                checks["team_chats"] = type(exc).__name__
        checks["application"] = "ok" if self._application.running else "stopped"
        if self._receiving is not None:
            checks["updates"] = self._receiving() or "ok"
        healthy = all(value == "ok" for value in checks.values())
        body: dict[str, str] = {"status": "ok" if healthy else "failing", **checks}
        role = self._polling_role() if self._polling_role is not None else None
        if role is not None:
            body["polling"] = role
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(self, _request: web.Request) -> web.Response:
        """Prometheus text format; the database gauges are refreshed first."""
        try:
            await refresh_gauges(self._ctx)
        except Exception as exc:
            # The counters are still worth scraping; the stale gauges are flagged in the log.
            log.warning("metrics_refresh_failed", error=type(exc).__name__)
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
