"""A running bot for end-to-end tests: fake Telegram server + real PTB stack + real database.

The clock is a :class:`~bot.clock.ManualClock`: tests move it and call :meth:`BotHarness.tick`,
so schedules, reminders and windows are exact and no test sleeps for time to pass. The bot starts
without its own wake-up job (``wake_dispatcher=False``): the test's tick is the only tick, so no
test races a second driver of the dispatcher.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import ManualClock
from bot.config import Settings
from bot.db.models import OwedMessage
from bot.domain.protocol import Indication, KneeSide
from bot.sandbox.fake_api import FakeTelegramServer, SentMessage
from bot.services import dispatch, enrolment, owed
from bot.services.enrolment import Invitation
from bot.telegram.runtime import BotRuntime

PARIS = ZoneInfo("Europe/Paris")
STAFF_CHAT = -1001000000001
ONCALL_CHAT = -1001000000002
NURSE = 5001
#: A stop normally takes well under a second here: past this many seconds the harness writes
#: every task's and thread's stack to stderr (shown with the test's failure). A stop once
#: waited SQLite's whole 30 s busy timeout in CI, and nothing said who held the lock.
SLOW_STOP = 8.0


@dataclass(frozen=True)
class TestDatabase:
    """Where a test's data lives."""

    __test__ = False  # a fixture's value, not a test class (pytest collects Test* names)

    url: str
    schema: str | None


def test_settings(
    database: TestDatabase, server: FakeTelegramServer, tmp_path: Path, **extra: object
) -> Settings:
    """Settings built explicitly: never from the environment's DATABASE_URL or a .env file."""
    values: dict[str, object] = {
        "telegram_bot_token": "",
        "telegram_api_base_url": server.api_base_url,
        "bot_username": server.bot_username,
        "database_url": database.url,
        "database_schema": database.schema,
        "staff_chat_id": STAFF_CHAT,
        "oncall_chat_id": ONCALL_CHAT,
        "staff_user_ids": (NURSE,),
        "allow_unapproved_protocol": True,
        "media_dir": tmp_path / "media",
        "timezone": "Europe/Paris",
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class Patient:
    """A test patient acting through the fake server, reading the bot's replies in order."""

    def __init__(self, server: FakeTelegramServer, user_id: int, language: str = "fr") -> None:
        self.server = server
        self.user_id = user_id
        self._read = 0
        server.add_user(user_id, first_name=f"User{user_id}", language_code=language)

    async def next(self, timeout: float = 10.0) -> SentMessage:  # noqa: ASYNC109
        """The bot's next message to this patient."""
        messages = await self.server.wait_for_count(
            self._read + 1, chat_id=self.user_id, timeout=timeout
        )
        self._read += 1
        return messages[-1]

    async def until(self, needle: str, timeout: float = 10.0) -> SentMessage:  # noqa: ASYNC109
        """Skip messages until one contains ``needle``."""
        while True:
            message = await self.next(timeout)
            if needle in (message.text or ""):
                return message

    def say(self, text: str) -> None:
        """Type a message."""
        self.server.send_text(self.user_id, text)

    def tap(self, message: SentMessage, label: str) -> None:
        """Tap a button by (part of) its label."""
        self.server.press_button(self.user_id, message.message_id, message.button_data(label))

    def all_texts(self) -> list[str]:
        """Everything the bot sent this patient so far."""
        return [m.text or "" for m in self.server.sent(self.user_id)]


class BotHarness:
    """Start/stop the whole stack; helpers to enrol, move time and read the staff chat."""

    #: The production limiter (AIORateLimiter + per-chat pacing); off for speed in most tests.
    rate_limit = False
    #: The bot's own wake-up job (DispatcherWaker): only tests about the waker turn it on; the
    #: others drive the dispatcher with :meth:`tick` alone.
    wake_dispatcher = False
    #: Ordinary updates the intake handles at once (None: the bot's default).
    intake_slots: int | None = None

    def __init__(
        self, database: TestDatabase, tmp_path: Path, *, start: datetime | None = None
    ) -> None:
        self.database = database
        self.tmp_path = tmp_path
        self.server = FakeTelegramServer()
        self.clock = ManualClock(start or datetime(2026, 12, 1, 8, 0, tzinfo=PARIS))
        self.runtime: BotRuntime | None = None
        #: Extra settings for the next :meth:`start_bot` (e.g. ``schedules_dir``).
        self.settings_overrides: dict[str, object] = {}

    async def __aenter__(self) -> BotHarness:
        await self.server.start()
        self.server.add_group(STAFF_CHAT, title="Staff")
        self.server.add_group(ONCALL_CHAT, title="On call")
        self.server.add_user(NURSE, first_name="Claire", language_code="fr")
        await self.start_bot()
        return self

    async def start_bot(self) -> None:
        """(Re)start the bot process part (same database, same fake server)."""
        settings = test_settings(
            self.database, self.server, self.tmp_path, **self.settings_overrides
        )
        self.runtime = await BotRuntime.create(
            settings,
            clock=self.clock,
            token=self.server.bot_token,
            base_url=self.server.api_base_url,
            base_file_url=self.server.file_base_url,
            require_approval=False,
            rate_limit=self.rate_limit,
        )
        if self.intake_slots is not None:
            self.runtime.intake_slots = self.intake_slots
        self.runtime.freeze_heap = False  # a full collection per start, for hundreds of starts
        await self.runtime.start(
            safety_tick=timedelta(seconds=3600), wake_dispatcher=self.wake_dispatcher
        )

    async def stop_bot(self) -> None:
        """Stop the bot (the fake server keeps running)."""
        if self.runtime is not None:
            stopping = asyncio.ensure_future(self.runtime.stop())
            done, _ = await asyncio.wait({stopping}, timeout=SLOW_STOP)
            if not done:
                write_stacks(f"the bot's stop has taken more than {SLOW_STOP:g} s")
            await stopping
            self.runtime = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_bot()
        await self.server.stop()

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        """The running bot's service context."""
        assert self.runtime is not None
        return self.runtime.ctx

    async def enrol(
        self,
        label: str = "P-001",
        *,
        language: str = "fr",
        baseline: int | None = None,
        procedure_at: datetime | None = None,
        indication: Indication = Indication.OSTEOARTHRITIS,
    ) -> Invitation:
        """Enrol through the service (as the CLI does)."""
        protocol = self.ctx.protocols.registry.latest("knee-cryoneurolysis")
        return await enrolment.enrol(
            self.ctx,
            label=label,
            procedure_at=procedure_at or datetime(2026, 12, 1, 9, 30, tzinfo=PARIS),
            side=KneeSide.LEFT,
            indication=indication,
            language=language,
            protocol=protocol,
            baseline_pain=baseline,
        )

    async def tick(self) -> dispatch.TickReport:
        """Run the dispatcher once at the current (manual) time."""
        return await dispatch.tick(self.ctx)

    async def advance_to(self, when: datetime) -> dispatch.TickReport:
        """Move the clock and run the dispatcher."""
        self.clock.set(when)
        return await self.tick()

    async def settle(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until every update queued at the fake server was fetched, handled and confirmed.

        The server drops an update once a later getUpdates confirms it (the poller confirms what
        is handled or kept in its inbox), and the intake has nothing in flight, so what the
        patients said is saved when this returns.
        """
        assert self.runtime is not None
        intake = self.runtime.intake
        async with asyncio.timeout(timeout):
            while self.server.stats()["pending_updates"] or (intake and intake.in_flight):  # noqa: ASYNC110 - no event for it
                await asyncio.sleep(0.005)

    async def staff_message(self, needle: str, timeout: float = 10.0) -> SentMessage:  # noqa: ASYNC109
        """The first staff-chat message containing ``needle``."""
        return await self.server.wait_for(
            lambda m: m.chat_id == STAFF_CHAT and needle in (m.text or ""), timeout=timeout
        )

    async def consented_patient(
        self, user_id: int = 1001, *, language: str = "fr", baseline: int = 5, label: str = "P-001"
    ) -> Patient:
        """Enrol, /start, consent, baseline: a patient whose follow-up has started."""
        invitation = await self.enrol(label, language=language)
        patient = Patient(self.server, user_id, language)
        patient.say(f"/start {invitation.token}")
        consent = await patient.next()
        patient.tap(consent, "J'accepte" if language == "fr" else "I agree")
        baseline_question = await patient.next()
        patient.tap(baseline_question, str(baseline))
        await patient.until("Prochain" if language == "fr" else "Next")
        # Telegram has the message; wait until the bot has also recorded it as sent, so a test
        # that then jumps the manual clock hours ahead does not find it "owed" by a stale claim.
        await self.settle()
        return patient


async def question(patient: Patient) -> SentMessage:
    """The bot's next message that has buttons (every question has some; acknowledgements and
    information messages have none)."""
    while True:
        message = await patient.next()
        if message.buttons():
            return message


async def eventually(check, timeout: float = 10.0):  # type: ignore[no-untyped-def]  # noqa: ASYNC109
    """Retry an async check until it stops raising AssertionError (the bot commits after it
    sends, so what Telegram saw may be a few milliseconds ahead of the database)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.02)


def owe(session: Any, **fields: Any) -> OwedMessage:
    """An owed row added to ``session`` (the bot writes a turn's rows together, delivery.py)."""
    row = owed.owed_row(**fields)
    session.add(row)
    return row


def write_stacks(why: str) -> None:
    """Every asyncio task's and thread's stack, on stderr: what a stuck test waits for."""
    out = sys.stderr
    print(f"=== {why}: tasks and threads", file=out)
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}", file=out)
        task.print_stack(limit=25, file=out)
    for thread_id, frame in sys._current_frames().items():
        print(f"--- thread {thread_id}", file=out)
        traceback.print_stack(frame, limit=25, file=out)


class AnotherSQLiteWriter:
    """A second connection to a SQLite file that takes the write lock just as the bot's first
    statement starting with ``prefix`` goes to the driver: that statement then really waits
    inside the driver until :meth:`release`. Records the rollbacks of that statement's
    connection (a task cancelled while it waited is rolled back)."""

    def __init__(self, engine: AsyncEngine, database_url: str, prefix: str) -> None:
        path = make_url(database_url).database
        assert path is not None, "a SQLite file"
        self._engine = engine.sync_engine
        self._prefix = prefix.upper()
        self._other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._caught = threading.Event()
        self._connection: object | None = None
        self.rolled_back: list[object] = []

    def __enter__(self) -> AnotherSQLiteWriter:
        event.listen(self._engine, "before_cursor_execute", self._lock_first)
        event.listen(self._engine, "rollback", self._rollback)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self._engine, "before_cursor_execute", self._lock_first)
        event.remove(self._engine, "rollback", self._rollback)
        self._other.close()

    async def caught(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the statement waits for the lock."""
        async with asyncio.timeout(timeout):
            while not self._caught.is_set():  # noqa: ASYNC110 - set by the driver's event
                await asyncio.sleep(0.005)

    def release(self) -> None:
        """The other writer is done: the statement goes through."""
        self._other.execute("ROLLBACK")

    def _lock_first(self, connection: object, _cursor: object, statement: str, *_: object) -> None:
        if self._connection is None and statement.lstrip().upper().startswith(self._prefix):
            self._connection = connection
            self._other.execute("BEGIN IMMEDIATE")
            self._caught.set()

    def _rollback(self, connection: object) -> None:
        if connection is self._connection:
            self.rolled_back.append(connection)
