"""Assemble a running bot: database (migrated), protocols, services, PTB application, wake-ups.

Used by ``python -m bot run`` (real Telegram or the sandbox), the demo, tests and benchmarks, so
they all exercise the same stack.
"""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.ext import Application

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db.lease import PollingLease
from bot.db.models import StaffMember
from bot.db.priority import PriorityGate
from bot.db.queries.facts import remember_username
from bot.db.session import create_engine, is_postgres, make_sessionmaker, upgrade_database
from bot.domain.urgency import UrgencyRules
from bot.services import claims, dead_letters
from bot.services.context import (
    SQLITE_TURNS_AT_ONCE,
    TURNS_AT_ONCE,
    ProtocolStore,
    ServiceContext,
)
from bot.services.inbox import Inbox
from bot.telegram.app import build_application, settings_requests, start_waker
from bot.telegram.http import AiohttpRequest
from bot.telegram.intake import UpdateIntake
from bot.telegram.jobs import DispatcherWaker
from bot.telegram.leadership import PollingLeadership
from bot.telegram.pace import SharedPace
from bot.telegram.patient import apologise_for, publish_commands
from bot.telegram.ratelimit import GROUP_RATE, OVERALL_RATE
from bot.telegram.sender import TelegramMessenger
from bot.telegram.staff_commands import publish_staff_commands
from bot.telegram.urgency import AskedQuestions, UrgencyReader
from bot.telegram.webhook import WebhookPlan, WebhookServer
from bot.wiring import SANDBOX_BOT_USERNAME, load_registry, unit_settings

log = structlog.get_logger(__name__)


@dataclass
class BotRuntime:
    """A fully wired bot; ``await start()`` then ``await stop()``."""

    settings: Settings
    engine: AsyncEngine
    ctx: ServiceContext
    application: Application[Any, Any, Any, Any, Any, Any]
    waker: DispatcherWaker | None = None
    leadership: PollingLeadership | None = None
    webhook: WebhookServer | None = None
    intake: UpdateIntake | None = None
    requests: tuple[AiohttpRequest, ...] = ()
    #: Ordinary updates handled at once (an urgent one never waits for a slot). Few, so the
    #: event loop has room for urgent work: in a 1,000-reply burst 8 instead of 64 cut the
    #: staff card's p99 by a third. Telegram takes ~30 messages a second from a bot, which 8
    #: lanes at 100 ms a send still fill.
    intake_slots: int = 8
    #: Freeze the start-up objects out of the collector's passes (see :meth:`start`). A test
    #: process that starts hundreds of bots turns it off: each start's full collection of its
    #: large heap cost ~0.15 s there and protects nothing.
    freeze_heap: bool = True

    @property
    def receiving(self) -> bool:
        """True while updates come in (polling, standing by for the polling lease, or the
        webhook server)."""
        polling = self.leadership is not None and self.leadership.running
        return polling or (self.webhook is not None and self.webhook.running)

    @property
    def receiving_problem(self) -> str | None:
        """Why updates do not come in, for ``/healthz`` (None when they do, or when another
        process of this database polls for this one)."""
        if self.intake is not None and self.intake.stalled:
            return "updates wait for the database"
        if self.leadership is not None:
            return self.leadership.problem
        return None if self.receiving else "not receiving"

    @property
    def polling_role(self) -> str | None:
        """``leader`` or ``follower`` of the polling lease; None when this process does not
        poll (webhook mode, ``RECEIVE_UPDATES=false``)."""
        return self.leadership.role if self.leadership is not None else None

    def _new_intake(self) -> UpdateIntake:
        ctx = self.ctx

        async def set_aside(update_id: int, raw: dict[str, Any], reason: str, tries: int) -> None:
            await dead_letters.set_aside(
                ctx,
                update_id=update_id,
                raw_json=dead_letters.raw_json(raw),
                reason=reason,
                tries=tries,
            )

        messenger = ctx.messenger
        asked = messenger.asked if isinstance(messenger, TelegramMessenger) else AskedQuestions()
        # Every protocol version a patient may follow: their red flags and urgent thresholds.
        rules = UrgencyRules.of(ctx.protocols.registry.all())
        # Compiles the red-flag patterns now: at the first batch of replies it cost ~40 ms.
        rules.text_is_urgent("-")
        return UpdateIntake(
            self.application,
            dead_letter=set_aside,
            on_give_up=lambda update: apologise_for(ctx, update),
            urgency=UrgencyReader(rules, asked),
            max_concurrent=self.intake_slots,
        )

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        token: str | None = None,
        base_url: str | None = None,
        base_file_url: str | None = None,
        require_approval: bool = True,
        rate_limit: bool | None = None,
    ) -> BotRuntime:
        """Migrate the database, load protocols, build the application (not yet started)."""
        registry = load_registry(settings, require_approval=require_approval)
        engine = create_engine(settings.database_url, schema=settings.database_schema)
        await upgrade_database(engine)
        sessions = make_sessionmaker(engine)
        api = base_url or settings.telegram_api_base_url
        file_api = base_file_url or api.removesuffix("/bot") + "/file/bot"
        real_token = token or settings.telegram_bot_token
        store = ProtocolStore(registry)
        clock = clock or SystemClock()
        async with sessions.begin() as session:
            await store.register_all(session, clock)
        # start() sets the @username getMe returns.
        placeholder = unit_settings(settings, settings.bot_username or SANDBOX_BOT_USERNAME)
        ctx = ServiceContext(
            sessions=sessions,
            messenger=None,  # type: ignore[arg-type]  # set below, once the bot exists
            clock=clock,
            unit=placeholder,
            protocols=store,
            process_id=claims.process_identity(),
            turn_gate=PriorityGate(TURNS_AT_ONCE if is_postgres(engine) else SQLITE_TURNS_AT_ONCE),
        )

        async def staff_ids() -> set[int]:
            async with sessions() as session:
                rows = await session.scalars(
                    select(StaffMember.user_id).where(StaffMember.removed_at.is_(None))
                )
                return set(settings.staff_user_ids) | set(rows)

        requests = settings_requests(settings)
        rate_limit = (not settings.sandbox) if rate_limit is None else rate_limit
        # Several processes may share PostgreSQL: Telegram's 30 a second is theirs together.
        shared_pace = (
            SharedPace(
                engine, rate=OVERALL_RATE, group_rate=GROUP_RATE / 60, group_burst=GROUP_RATE
            )
            if rate_limit and is_postgres(engine)
            else None
        )
        application = build_application(
            ctx,
            requests=requests,
            token=real_token,
            base_url=api,
            base_file_url=file_api,
            rate_limit=rate_limit,
            staff_ids=staff_ids,
            shared_pace=shared_pace,
        )
        ctx.messenger = TelegramMessenger(application.bot)
        return cls(
            settings=settings, engine=engine, ctx=ctx, application=application, requests=requests
        )

    async def start(
        self,
        *,
        polling: bool = True,
        webhook: WebhookPlan | None = None,
        safety_tick: timedelta | None = None,
        wake_dispatcher: bool = True,
    ) -> None:
        """Initialise PTB, learn the bot's username, start receiving and the dispatcher.

        Updates come by polling, or by ``webhook`` when given (then ``polling`` is ignored).
        Polling is done by whichever process of the database holds the polling lease; the
        others stand by (leadership.py).
        ``wake_dispatcher=False`` starts no wake-up job: nothing ticks the dispatcher but the
        caller (tests on a manual clock call ``dispatch.tick`` themselves, so theirs is the only
        tick and no second driver races it). ``waker`` then stays None.
        """
        try:
            await self.application.initialize()
        except BaseException:
            # PTB's shutdown does nothing for a bot that never initialised: close our sessions.
            for request in self.requests:
                await request.shutdown()
            await self.engine.dispose()
            raise
        username = self.settings.bot_username or self.application.bot.username
        self.ctx.unit = unit_settings(self.settings, username)
        async with self.ctx.sessions.begin() as session:
            await remember_username(
                session,
                token=self.application.bot.token,
                username=self.application.bot.username,
                at=self.ctx.clock.now(),
            )
        if self.settings.receive_updates:
            await publish_commands(self.application.bot, self.ctx)
            await publish_staff_commands(self.application.bot, self.ctx)
        await self.application.start()
        if self.settings.receive_updates and (polling or webhook is not None):
            # Not PTB's Updater: it confirms updates before they are handled (intake.py).
            self.intake = self._new_intake()
            if webhook is not None:
                self.webhook = WebhookServer(self.application, self.intake, webhook)
                await self.webhook.start()
            else:
                bot_id = self.application.bot.token.split(":")[0]
                lease = PollingLease(self.engine, bot_id=bot_id)
                inbox = Inbox(self.ctx, bot_id=int(bot_id)) if bot_id.isdigit() else None
                self.leadership = PollingLeadership(
                    self.application, self.intake, lease, inbox=inbox
                )
                await self.leadership.start()
        if wake_dispatcher:
            self.waker = start_waker(
                self.application, self.ctx, safety_tick=safety_tick or timedelta(seconds=60)
            )
        if self.freeze_heap:
            # Start-up objects (modules, protocols, PTB) live as long as the process: frozen,
            # they leave the collector's full passes, which otherwise stall the loop 100-500 ms
            # (bench).
            gc.collect()
            gc.freeze()
        log.info("bot_started", username=username, sandbox=self.settings.sandbox)

    async def stop(self) -> None:
        """Stop polling and jobs, close the database."""
        if self.leadership is not None:
            await self.leadership.stop()
        if self.webhook is not None:
            await self.webhook.stop()
        if self.intake is not None:
            await self.intake.drain(5.0)
            await self.intake.close()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self.ctx.close()
        await self.engine.dispose()
        if self.freeze_heap:
            gc.unfreeze()  # what start() froze may be freed again

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (SIGINT/SIGTERM in the CLI)."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
