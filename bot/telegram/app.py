"""Wires python-telegram-bot: the Application, its handlers (in one place) and the wake-up jobs.

Handlers only translate updates into service calls. The staff's: commands in
``staff_commands.py``, alert card buttons in ``alert_buttons.py``, answers to an open dialog in
``dialog_answers.py`` (their shared staff check in ``staff_access.py``). The patients' are in
``patient.py``, whose docstring gives the order that makes sure nothing a patient sends is
silently ignored.

Handler groups (order matters):

* group :data:`STAFF_GROUP` (-1, before every patient handler): staff commands, and text that
  answers an open staff dialog (a guided ``/enroll`` step, a resolution note). They stop the
  update with ``ApplicationHandlerStop`` once handled; anything else — a patient's answer, a
  patient's own ``/stop`` — goes on to group 0 untouched.
* group 0: alert and dialog buttons, registered before the patient button handler (which
  answers every other button); their callback patterns never match a patient's button.

Updates reach ``Application.process_update`` from ``intake.py`` (per-chat order,
retries, dead letters), never through PTB's own update queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.config import Settings
from bot.services.context import ServiceContext
from bot.telegram import alert_buttons, dialog_answers, patient
from bot.telegram.http import AiohttpRequest
from bot.telegram.intake import record_failure
from bot.telegram.jobs import DispatcherWaker
from bot.telegram.pace import SharedPace
from bot.telegram.ratelimit import ChatRateLimiter
from bot.telegram.staff_access import StaffAccess
from bot.telegram.staff_commands import StaffCommands

log = structlog.get_logger(__name__)
#: Before the patient handlers (group 0): staff commands and dialog answers are taken first.
STAFF_GROUP = -1


def new_requests(
    proxy: str | None = None, *, trust_env: bool = True
) -> tuple[AiohttpRequest, AiohttpRequest]:
    """The HTTP backends for API calls and for getUpdates long-polling: through ``proxy``
    (TELEGRAM_PROXY_URL) when given, else the environment's proxy unless ``trust_env`` is off
    (the sandbox's server is on loopback: a proxy would not reach it)."""
    return (
        AiohttpRequest(connection_pool_size=128, pool_timeout=30, proxy=proxy, trust_env=trust_env),
        AiohttpRequest(connection_pool_size=2, read_timeout=35, proxy=proxy, trust_env=trust_env),
    )


def settings_requests(settings: Settings) -> tuple[AiohttpRequest, AiohttpRequest]:
    """:func:`new_requests` as the settings ask: real Telegram through the hospital's proxy,
    the sandbox direct."""
    if settings.sandbox:
        return new_requests(trust_env=False)
    return new_requests(settings.telegram_proxy_url)


def build_application(
    ctx: ServiceContext,
    *,
    token: str,
    base_url: str,
    base_file_url: str,
    rate_limit: bool,
    staff_ids: Callable[[], Awaitable[set[int]]],
    requests: tuple[AiohttpRequest, AiohttpRequest] | None = None,
    shared_pace: SharedPace | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """An Application pointed at ``base_url`` (Telegram or the sandbox), handlers wired.

    ``requests`` = (API calls, getUpdates); the caller keeps them to close them if start fails.
    ``shared_pace``: Telegram's overall budget shared with the other processes (PostgreSQL).
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
        builder = builder.rate_limiter(ChatRateLimiter(shared_pace))
    application = builder.build()
    # Staff first: their commands run in an earlier group and their button patterns are
    # exclusive; the patient handlers end with catch-alls (stale buttons, unknown commands).
    _add_staff_handlers(application, StaffAccess(ctx, staff_ids))
    patient.PatientHandlers(ctx).register(application)
    application.add_error_handler(_on_error)
    return application


def _add_staff_handlers(
    application: Application[Any, Any, Any, Any, Any, Any], access: StaffAccess
) -> None:
    """The staff's handlers, in the groups and order the module docstring explains."""
    answers = dialog_answers.DialogAnswers(access)
    # Group 0, before the patient button handler, whose catch-all would take these presses.
    application.add_handler(
        CallbackQueryHandler(
            alert_buttons.AlertButtons(access).on_press, pattern=alert_buttons.PATTERN
        )
    )
    application.add_handler(CallbackQueryHandler(answers.on_button, pattern=dialog_answers.PATTERN))
    for name, callback in StaffCommands(access).callbacks().items():
        application.add_handler(
            # New messages only: an edited command must not send a /msg twice.
            CommandHandler(name, callback, filters=filters.UpdateType.MESSAGE),
            group=STAFF_GROUP,
        )
    # After the commands, in the same group: text that is not a command may answer a dialog.
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, answers.on_text
        ),
        group=STAFF_GROUP,
    )


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
