"""The sandbox: the fake Telegram server, the real bot, and scripted virtual patients.

``python -m bot run`` without a token (and ``python -m bot demo``) start this, so a new user sees
the whole product work in under a minute, without any account: enrolment, consent, check-ins on an
accelerated clock, free-text answers, a worrying answer, the safety advice, the staff alert and a
nurse acknowledging it. The transcript is printed as it happens (patient / bot / staff lines).

Without a token, a DATABASE_URL that is set keeps the sandbox's data, so ``export`` and ``report``
show it afterwards (the database must hold no patient yet). Otherwise the sandbox uses a
temporary SQLite file, deleted at exit: it never touches the bot's real database.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from bot import output
from bot.clock import AcceleratedClock
from bot.config import Settings
from bot.db.models import Alert, CheckIn, Patient
from bot.db.session import create_engine
from bot.domain.protocol import Indication, KneeSide
from bot.errors import UsageError
from bot.sandbox.fake_api import FakeTelegramServer, SentMessage
from bot.services import enrolment
from bot.telegram.runtime import BotRuntime

STAFF_CHAT = -1001000000001
ONCALL_CHAT = -1001000000002
NURSE_ID = 5001
DOCTOR_ID = 5002
#: One real second is one simulated minute; the script jumps the clock to each due check-in.
SPEED = 60.0


class Transcript:
    """Prints every message the bot sends or edits, with who it went to."""

    def __init__(self, server: FakeTelegramServer, names: dict[int, str]) -> None:
        self._server = server
        self._names = names
        self._seen: dict[tuple[int, int], int] = {}

    def flush(self) -> None:
        """Print what is new since the last call."""
        for message in self._server.sent():
            key = (message.chat_id, message.message_id)
            edits = self._seen.get(key)
            if edits == message.edits:
                continue
            self._seen[key] = message.edits
            who = self._names.get(message.chat_id, str(message.chat_id))
            arrow = "bot ✎" if edits is not None else "bot →"
            text = (message.text or f"[{message.kind}]").replace("\n", "\n" + " " * 18)
            buttons = [label for label, _ in message.buttons()]
            output.line(f"{arrow} {who:<11} {text}")
            if buttons:
                output.line(" " * 18 + "  ".join(f"[{b}]" for b in buttons))

    async def follow(self) -> None:
        """Flush continuously (background task)."""
        while True:
            self.flush()
            await asyncio.sleep(0.05)


class VirtualPatient:
    """A scripted patient acting through the fake server's control side."""

    def __init__(
        self, server: FakeTelegramServer, user_id: int, label: str, transcript: Transcript
    ) -> None:
        self.server = server
        self.transcript = transcript
        self.user_id = user_id
        self.label = label
        self._read = 0

    async def next_message(self, needle: str | None = None, timeout: float = 15.0) -> SentMessage:  # noqa: ASYNC109
        """Wait for the bot's next message to this patient (containing ``needle`` if given)."""
        async with asyncio.timeout(timeout):
            while True:
                messages = await self.server.wait_for_count(
                    self._read + 1, chat_id=self.user_id, timeout=timeout
                )
                message = messages[self._read]
                self._read += 1
                if needle is None or needle in (message.text or ""):
                    return message

    async def question(self, timeout: float = 15.0) -> SentMessage:  # noqa: ASYNC109
        """Wait for the bot's next message that has buttons (a question), or an edit of one."""
        async with asyncio.timeout(timeout):
            while True:
                messages = await self.server.wait_for_count(
                    self._read + 1, chat_id=self.user_id, timeout=timeout
                )
                if messages[self._read].buttons():
                    self._read += 1
                    return messages[self._read - 1]
                self._read += 1

    async def tap_next(self, label: str) -> SentMessage:
        """Wait for the next question and tap ``label`` on it."""
        message = await self.question()
        self.taps(message, label)
        return message

    def says(self, text: str) -> None:
        """The patient types ``text``."""
        self.transcript.flush()
        output.line(f"patient {self.label:<8} {text}")
        self.server.send_text(self.user_id, text)

    def taps(self, message: SentMessage, label: str) -> None:
        """The patient taps the button whose label contains ``label``."""
        data = message.button_data(label)
        self.transcript.flush()
        output.line(f"patient {self.label:<8} (taps {label})")
        self.server.press_button(self.user_id, message.message_id, data)


def _sandbox_settings(
    settings: Settings, server: FakeTelegramServer, folder: Path | None
) -> Settings:
    """The settings the sandbox runs with; ``folder`` holds its database unless it keeps data."""
    update: dict[str, object] = {
        "telegram_api_base_url": server.api_base_url,
        "staff_chat_id": STAFF_CHAT,
        "oncall_chat_id": ONCALL_CHAT,
        "staff_user_ids": (NURSE_ID, DOCTOR_ID),
        "allow_unapproved_protocol": True,
        "bot_username": server.bot_username,
    }
    if folder is not None:
        update |= {
            "database_url": f"sqlite+aiosqlite:///{folder / 'sandbox.db'}",
            "database_schema": None,
            "media_dir": folder / "media",
        }
    return settings.model_copy(update=update)


def keeps_data(settings: Settings) -> bool:
    """True when the sandbox writes into DATABASE_URL: it was set, and no token is (a machine
    with a token is a real deployment, whose database the sandbox's patients must not enter)."""
    return settings.sandbox and "database_url" in settings.model_fields_set


async def run_sandbox(settings: Settings, *, keep_running: bool, stop: asyncio.Event) -> int:
    """Start the sandbox, play the script, and keep running if asked (until ``stop``)."""
    if keeps_data(settings):
        await _require_no_patient(settings)
        return await _play(settings, None, keep_running=keep_running, stop=stop)
    with tempfile.TemporaryDirectory(prefix="cryo-sandbox-", ignore_cleanup_errors=True) as folder:
        return await _play(settings, Path(folder), keep_running=keep_running, stop=stop)


async def _require_no_patient(settings: Settings) -> None:
    """The script's patients (P-001, P-002) would collide with, or mix into, existing ones."""
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    try:
        async with engine.connect() as connection:
            exists = await connection.run_sync(
                lambda sync: inspect(sync).has_table(Patient.__tablename__)
            )
            count = (
                await connection.scalar(select(func.count()).select_from(Patient)) if exists else 0
            )
    finally:
        await engine.dispose()
    if count:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        raise UsageError(
            f"DATABASE_URL ({where}) already holds {count} patient(s): the sandbox needs a "
            "database of its own; point DATABASE_URL to a new one, or unset it for a temporary one"
        )


async def _play(
    settings: Settings, folder: Path | None, *, keep_running: bool, stop: asyncio.Event
) -> int:
    server = FakeTelegramServer()
    await server.start()
    try:
        return await _play_on(settings, server, folder, keep_running=keep_running, stop=stop)
    finally:
        await server.stop()


async def _play_on(
    settings: Settings,
    server: FakeTelegramServer,
    folder: Path | None,
    *,
    keep_running: bool,
    stop: asyncio.Event,
) -> int:
    zone = ZoneInfo(settings.timezone)
    today = datetime.now(zone).date()
    procedure_at = datetime.combine(today, time(9, 30), tzinfo=zone)
    clock = AcceleratedClock(procedure_at + timedelta(hours=1), SPEED)
    local = _sandbox_settings(settings, server, folder)
    server.add_group(STAFF_CHAT, title="Radiologie interventionnelle — équipe")
    server.add_group(ONCALL_CHAT, title="Astreinte")
    server.add_user(NURSE_ID, first_name="Claire", language_code="fr")
    server.add_user(DOCTOR_ID, first_name="Dr Martin", language_code="fr")
    output.line(
        "Sandbox: no TELEGRAM_BOT_TOKEN set, so the bot talks to the built-in fake Telegram"
    )
    output.line(f"server at {server.url}, on an accelerated clock.")
    if folder is None:
        where = make_url(local.database_url).render_as_string(hide_password=True)
        output.line(
            f"Its data is kept in DATABASE_URL ({where}): `export` and `report` show it "
            "afterwards. Never use that database for real patients."
        )
    else:
        output.line(
            f"Its database is temporary, in {folder}, and deleted at exit "
            "(set DATABASE_URL to keep it for `export` and `report`)."
        )
    output.line(
        "The protocol is NOT approved by a physician yet: the sandbox allows it "
        "(ALLOW_UNAPPROVED_PROTOCOL=true); `run` with a real token refuses it."
    )
    output.line("")
    runtime = await BotRuntime.create(
        local,
        clock=clock,
        token=server.bot_token,
        base_url=server.api_base_url,
        base_file_url=server.file_base_url,
        require_approval=False,
        rate_limit=False,
    )
    names = {STAFF_CHAT: "staff", ONCALL_CHAT: "on-call"}
    transcript = Transcript(server, names)
    printer = asyncio.create_task(transcript.follow())
    try:
        await runtime.start(safety_tick=timedelta(seconds=1))
        await _script(runtime, server, names, clock, procedure_at, transcript)
        transcript.flush()
        output.line("")
        output.line(
            "Script finished: enrolment, consent, check-ins, a pain of 9 escalated to staff "
            "and acknowledged, a calf-pain red flag with safety advice."
        )
        if keep_running:
            output.line(
                f"The sandbox keeps running (fake Telegram at {server.url}); Ctrl-C to stop."
            )
            await stop.wait()
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
        await runtime.stop()
    return 0


async def _jump_to_next_event(
    runtime: BotRuntime, clock: AcceleratedClock, transcript: Transcript
) -> None:
    """Skip simulated time to the next check-in or re-escalation (what the script shows)."""
    async with runtime.ctx.sessions() as session:
        due = await session.scalar(
            select(func.min(CheckIn.due_at)).where(CheckIn.status == "scheduled")
        )
        escalation = await session.scalar(
            select(func.min(Alert.next_escalation_at)).where(Alert.status == "open")
        )
    upcoming = min(moment for moment in (due, escalation) if moment is not None)
    await asyncio.sleep(0.2)  # let the bot's last replies arrive before the clock moves
    transcript.flush()
    if upcoming > clock.now():
        clock.jump(upcoming - clock.now())
        local = upcoming.astimezone(ZoneInfo(runtime.settings.timezone))
        runtime.ctx.on_schedule_changed()
        output.line(f"--- clock jumps to {local:%a %d %b %H:%M} ---")
    runtime.ctx.on_schedule_changed()


async def _script(
    runtime: BotRuntime,
    server: FakeTelegramServer,
    names: dict[int, str],
    clock: AcceleratedClock,
    procedure_at: datetime,
    transcript: Transcript,
) -> None:
    ctx = runtime.ctx
    protocol = ctx.protocols.registry.latest("knee-cryoneurolysis")
    anne = VirtualPatient(server, 1001, "P-001", transcript)
    john = VirtualPatient(server, 1002, "P-002", transcript)
    server.add_user(anne.user_id, first_name="Anne", language_code="fr")
    server.add_user(john.user_id, first_name="John", language_code="en")
    names.update({anne.user_id: anne.label, john.user_id: john.label})

    output.line(
        "staff    enrols P-001 (left knee, osteoarthritis, French) and P-002 (right knee, "
        "after knee replacement, English, baseline pain 5)"
    )
    first = await enrolment.enrol(
        ctx,
        label=anne.label,
        procedure_at=procedure_at,
        side=KneeSide.LEFT,
        indication=Indication.OSTEOARTHRITIS,
        language="fr",
        protocol=protocol,
        actor="sandbox",
    )
    second = await enrolment.enrol(
        ctx,
        label=john.label,
        procedure_at=procedure_at,
        side=KneeSide.RIGHT,
        indication=Indication.AFTER_KNEE_REPLACEMENT,
        language="en",
        protocol=protocol,
        baseline_pain=5,
        actor="sandbox",
    )
    output.line(f"staff    link for P-001: {first.link}")

    anne.says(f"/start {first.token}")
    await anne.tap_next("J'accepte")
    await anne.tap_next("6")
    await anne.next_message("Prochain")

    john.says(f"/start {second.token}")
    await john.tap_next("I agree")
    await john.next_message("Next")

    # Day 0, evening check-in.
    await _jump_to_next_event(runtime, clock, transcript)
    await anne.tap_next("4")
    for _ in range(3):  # bleeding, toes, dressing
        await anne.tap_next("Non")
    await anne.question()
    anne.says("un peu gonflé")
    await anne.tap_next("Aucun de ces signes")
    await anne.question()  # painkillers in the week before the procedure, in her own words
    anne.says("du doliprane, 3 jours")
    await anne.next_message("Noté : paracétamol")
    for _ in range(5):  # WHO-5 well-being, the baseline of quality of life
        await anne.tap_next("La plupart du temps")
    await anne.next_message("Prochain")

    await john.question()
    john.says("about 3")
    for _ in range(3):
        await john.tap_next("No")
    await john.tap_next("A little")
    flags = await john.question()
    john.taps(flags, "Calf")
    await server.wait_for(  # the same checklist, edited to show the tick
        lambda m: m.chat_id == john.user_id and m.message_id == flags.message_id and m.edits > 0
    )
    john.taps(flags, "Done")
    await john.next_message("alerted")  # safety advice
    await server.wait_for(lambda m: m.chat_id == STAFF_CHAT and "P-002" in (m.text or ""))

    # Nobody takes P-002's urgent alert for 15 minutes: it goes to the on-call chat.
    await _jump_to_next_event(runtime, clock, transcript)
    oncall_card = await server.wait_for(
        lambda m: m.chat_id == ONCALL_CHAT and "P-002" in (m.text or "")
    )
    transcript.flush()
    output.line("on-call  Dr Martin taps [Je prends] in the on-call chat")
    server.press_button(
        DOCTOR_ID, oncall_card.message_id, oncall_card.button_data("Je prends"), chat_id=ONCALL_CHAT
    )
    await server.wait_for(
        lambda m: (
            m.chat_id == STAFF_CHAT and "P-002" in (m.text or "") and "Martin" in (m.text or "")
        )
    )

    # Day 1 morning: Anne reports a pain of 9 in her own words.
    await _jump_to_next_event(runtime, clock, transcript)
    await anne.question()
    anne.says("j'ai mal à 9, ça ne passe pas")
    await anne.next_message("15")  # safety advice with the numbers to call
    card = await server.wait_for(
        lambda m: m.chat_id == STAFF_CHAT and "P-001" in (m.text or "") and bool(m.buttons())
    )
    transcript.flush()
    output.line("staff    Claire (nurse) taps [Acknowledge] on the alert for P-001")
    server.press_button(
        NURSE_ID, card.message_id, card.button_data(card.buttons()[0][0]), chat_id=STAFF_CHAT
    )
    await server.wait_for(
        lambda m: (
            m.chat_id == STAFF_CHAT
            and m.message_id == card.message_id
            and "Claire" in (m.text or "")
        )
    )
    await asyncio.sleep(0.2)
