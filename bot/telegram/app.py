"""Wires python-telegram-bot: the Application, its handlers (in one place) and the wake-up jobs.

Handlers only translate updates into service calls: the staff's live in ``staff.py``, the
patients' in ``patient.py`` (whose docstring gives the order that makes sure nothing a patient
sends is silently ignored). Updates reach ``Application.process_update`` from ``intake.py``
(per-chat order, retries, dead letters), never through PTB's own update queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes

from bot.services.context import ServiceContext
from bot.telegram import patient, staff
from bot.telegram.http import AiohttpRequest
from bot.telegram.intake import record_failure
from bot.telegram.jobs import DispatcherWaker
from bot.telegram.ratelimit import ChatRateLimiter

log = structlog.get_logger(__name__)


def new_requests() -> tuple[AiohttpRequest, AiohttpRequest]:
    """The HTTP backends for API calls and for getUpdates long-polling."""
    return (
        AiohttpRequest(connection_pool_size=128, pool_timeout=30),
        AiohttpRequest(connection_pool_size=2, read_timeout=35),
    )


def build_application(
    ctx: ServiceContext,
    *,
    token: str,
    base_url: str,
    base_file_url: str,
    rate_limit: bool,
    staff_ids: Callable[[], Awaitable[set[int]]],
    requests: tuple[AiohttpRequest, AiohttpRequest] | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """An Application pointed at ``base_url`` (Telegram or the sandbox), handlers wired.

    ``requests`` = (API calls, getUpdates); the caller keeps them to close them if start fails.
    """
    api_request, updates_request = requests or new_requests()
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url)
        # aiohttp, not httpx: httpx's pool collapses with many requests in flight (bot/telegram/http.py)
        .request(api_request)
        .get_updates_request(updates_request)
    )
    if rate_limit:
        builder = builder.rate_limiter(ChatRateLimiter())
    application = builder.build()
    staff_handlers = staff.StaffHandlers(ctx, staff_ids)

    # Staff first: their commands run in an earlier group and their button patterns are
    # exclusive; the patient handlers end with catch-alls (stale buttons, unknown commands).
    staff_handlers.register(application)
    patient.PatientHandlers(ctx).register(application)
    application.add_error_handler(_on_error)
    return application


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error type and update id only (an update holds patient content), and tell the
    intake, which retries the update or sets it aside (intake.py)."""
    record_failure(context.error)
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "handler_error",
        error=type(context.error).__name__,
        update_id=update_id,
        exc_info=context.error,
    )


def start_waker(
    application: Application[Any, Any, Any, Any, Any, Any],
    ctx: ServiceContext,
    *,
    safety_tick: timedelta,
) -> DispatcherWaker:
    """Attach the dispatcher's wake-up jobs to the application's JobQueue."""
    assert application.job_queue is not None
    waker = DispatcherWaker(application.job_queue, ctx, safety_tick=safety_tick)
    ctx.on_schedule_changed = waker.poke
    waker.start()
    return waker
