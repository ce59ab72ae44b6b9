"""What each CLI command does (the parser lives in ``bot.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot import output
from bot.clock import AcceleratedClock, SystemClock
from bot.config import Settings
from bot.db.models import Episode, Patient, StaffMember
from bot.db.queries.facts import stored_username
from bot.db.session import create_engine, current_revision, make_sessionmaker, upgrade_database
from bot.domain.coverage import flag_coverage, in_day_order, late_red_flags
from bot.domain.protocol import Indication, KneeSide, Protocol
from bot.domain.schedule import plan_checkins
from bot.domain.states import CheckInStatus
from bot.errors import BotError, ConfigError, ProtocolError, UsageError
from bot.i18n import available_languages, format_local, t, tn
from bot.protocols import ProtocolRegistry, load_protocol_file
from bot.services import audit as audit_service
from bot.services import enrolment, erasure
from bot.services import followup as followup_service
from bot.services.context import ProtocolStore, ServiceContext
from bot.services.ports import DeliveryError, OutgoingMessage, SentRef
from bot.wiring import SANDBOX_BOT_USERNAME, languages_missing, load_registry, unit_settings

if TYPE_CHECKING:
    from bot.telegram.doctor import Findings

#: The command line speaks English (the staff chat speaks the unit's language).
CLI_LANGUAGE = "en"

#: Every action the bot records in the audit trail (tests/cli checks it against the code), so
#: ``audit --action`` can tell a typo from an action that simply has no event yet.
AUDIT_ACTIONS = frozenset(
    {
        "alert_acknowledged",
        "alert_delivered",
        "alert_extended",
        "alert_raised",
        "alert_reescalated",
        "alert_resolved",
        "bot_blocked",
        "bot_unblocked",
        "chat_linked",
        "checkin_missed",
        "checkin_sent_now",
        "consent_given",
        "consent_refused",
        "consent_renewal_asked",
        "data_copy_sent",
        "education_sent",
        "enrol",
        "enrol_token_refused",
        "erasure_requested",
        "export",
        "follow_up_paused",
        "follow_up_resumed",
        "follow_up_stopped",
        "language_changed",
        "patient_erased",
        "procedure_moved",
        "safety_advice_sent",
        "staff_action_refused",
        "staff_add",
        "staff_remove",
        "staff_view",
        "stop_notice_failed",
        "unit_message",
    }
)


class OfflineMessenger:
    """The CLI's messenger: these commands never talk to patients, so sending is an error."""

    async def send(self, chat_id: int, message: OutgoingMessage) -> SentRef:
        """Refuse: the CLI does not send messages."""
        raise DeliveryError("the command line does not send Telegram messages")

    async def edit(self, ref: SentRef, message: OutgoingMessage) -> None:
        """Refuse: the CLI does not edit messages."""
        raise DeliveryError("the command line does not edit Telegram messages")

    async def forward(self, chat_id: int, from_chat_id: int, message_id: int) -> SentRef:
        """Refuse: the CLI does not forward messages."""
        raise DeliveryError("the command line does not forward Telegram messages")

    async def download(self, file_id: str) -> bytes:
        """Refuse: the CLI does not download patients' files."""
        raise DeliveryError("the command line does not download Telegram files")

    async def check_chat(self, chat_id: int) -> None:
        """Refuse: the CLI does not ask Telegram about chats (``doctor`` does, on its own)."""
        raise DeliveryError("the command line does not check Telegram chats")


@asynccontextmanager
async def offline_context(
    settings: Settings, *, registry: ProtocolRegistry | None = None, create: bool = True
) -> AsyncIterator[ServiceContext]:
    """Database + protocols, no Telegram: for enrol, staff and audit commands.

    ``create=False`` is for commands that read or change what is already there: they refuse a
    SQLite file that does not exist rather than create an empty database and report on it.
    """
    if not create:
        _require_database(settings)
    registry = registry or load_registry(settings, require_approval=False)
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    try:
        await upgrade_database(engine)
        clock = SystemClock()
        sessions = make_sessionmaker(engine)
        store = ProtocolStore(registry)
        async with sessions.begin() as session:
            await store.register_all(session, clock)
        ctx = ServiceContext(
            sessions=sessions,
            messenger=OfflineMessenger(),
            clock=clock,
            # Only enroll prints a link: it sets the bot's real @username (_bot_username).
            unit=unit_settings(settings, settings.bot_username or SANDBOX_BOT_USERNAME),
            protocols=store,
            process_id="cli",
        )
        try:
            yield ctx
        finally:
            await ctx.close()
    finally:
        await engine.dispose()


def _require_database(settings: Settings) -> None:
    """Refuse a SQLite DATABASE_URL whose file does not exist (a typo, or the wrong folder)."""
    url = make_url(settings.database_url)
    path = url.database or ""
    if (
        url.get_backend_name() == "sqlite"
        and path not in ("", ":memory:")
        and not Path(path).exists()
    ):
        raise UsageError(
            f"no database at {Path(path).resolve()}: run this from the bot's folder or set "
            "DATABASE_URL to the bot's database"
        )


def _check_writable(path: Path, option: str) -> None:
    """Refuse, before any change, a file the command could not write at the end."""
    folder = path.parent
    if path.is_dir():
        raise UsageError(f"{option} {path}: this is a folder; give a file name")
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write in the folder {folder}")


def _check_language(language: str, supported: Sequence[str]) -> None:
    if language not in supported:
        raise UsageError(f"--language {language!r}: must be one of {', '.join(supported)}")


async def run_bot(settings: Settings, *, stop: asyncio.Event, webhook: bool) -> int:
    """The long-running bot against real Telegram: polling, or a webhook with its secret token;
    ``/healthz`` and ``/metrics`` on METRICS_PORT when set."""
    from telegram.error import TelegramError

    from bot.telegram.doctor import diagnose
    from bot.telegram.ops import OpsServer
    from bot.telegram.runtime import BotRuntime
    from bot.telegram.webhook import plan_webhook

    clock = rehearsal_clock(settings)
    plan = plan_webhook(settings) if webhook else None
    load_registry(settings, require_approval=True)  # a bad protocol file: its own lines
    findings = await diagnose(settings, starting=True)
    _print_problems(findings)
    if findings.blocking:
        raise ConfigError(
            f"not started: {len(findings.blocking)} problem(s) above would lose alerts "
            "(`python -m bot doctor` checks again)"
        )
    # A rehearsal never paces at Telegram's 1 message/s per chat: on a clock 3,600 times too
    # fast that would be one message per simulated hour (and it never talks to Telegram).
    runtime = await BotRuntime.create(settings, clock=clock, rate_limit=clock is None)
    if clock is not None:
        clock.release()  # from CLOCK_START now that the database is ready, not before
        output.line(
            f"Rehearsal clock: {clock.now().astimezone(ZoneInfo(settings.timezone)):%Y-%m-%d %H:%M}"
            f" ({settings.timezone}), {settings.clock_speed:g} simulated seconds per second."
        )
    ops: OpsServer | None = None
    try:
        try:
            await runtime.start(polling=plan is None, webhook=plan)
        except TelegramError as exc:  # one clear line, not a traceback (the token stays out)
            raise BotError(
                f"the Telegram Bot API at {settings.telegram_api_base_url} refused or did not "
                f"answer at start ({type(exc).__name__}): check TELEGRAM_BOT_TOKEN, "
                "TELEGRAM_API_BASE_URL and the network"
            ) from None
        if settings.metrics_port:
            ops = OpsServer(
                runtime.ctx,
                runtime.application,
                port=settings.metrics_port,
                receiving=(lambda: runtime.receiving_problem) if settings.receive_updates else None,
                polling_role=lambda: runtime.polling_role,
            )
            await ops.start()
        mode = "webhook" if plan is not None else "polling"
        output.line(f"Bot running ({mode}). Stop with Ctrl-C.")
        await stop.wait()
    finally:
        if ops is not None:
            await ops.stop()
        await runtime.stop()
    return 0


def rehearsal_clock(settings: Settings) -> AcceleratedClock | None:
    """The simulated clock of CLOCK_SPEED/CLOCK_START (held at its start), None for real time.

    Refused against Telegram's own API: its users are real patients, living in real time.
    """
    if not settings.rehearsal:
        return None
    if settings.talks_to_telegram:
        raise ConfigError(
            f"not started: a rehearsal clock (CLOCK_SPEED={settings.clock_speed:g}"
            f"{', CLOCK_START' if settings.clock_start else ''}) runs only against a test Bot "
            "API, and TELEGRAM_API_BASE_URL is Telegram's own (api.telegram.org), where "
            "patients are real: point it at the test server, or set CLOCK_SPEED=1 and no "
            "CLOCK_START"
        )
    start = settings.clock_start or SystemClock().now()
    return AcceleratedClock(start, settings.clock_speed, held=True)


async def doctor(settings: Settings) -> int:
    """Check everything a production start needs; exit 2 when a problem would lose an alert,
    1 when only warnings remain."""
    from bot.telegram.doctor import diagnose

    findings = await diagnose(settings)
    _print_problems(findings)
    if findings.problems:
        output.line(
            f"{len(findings.blocking)} problem(s) that would lose alerts, "
            f"{len(findings.problems) - len(findings.blocking)} warning(s)"
        )
        return 2 if findings.blocking else 1
    output.line(f"ready: {'; '.join(findings.checked)}")
    return 0


def _print_problems(findings: Findings) -> None:
    for problem in findings.problems:
        (output.error if problem.loses_alerts else output.warning)(problem.line())


async def _bot_username(ctx: ServiceContext, settings: Settings) -> str:
    """The @username for enrolment links: BOT_USERNAME, else the one getMe returned at the
    bot's last start (stored), else getMe now; the sandbox's bot without a token."""
    if settings.bot_username is not None:
        return settings.bot_username
    if settings.sandbox:
        return SANDBOX_BOT_USERNAME
    async with ctx.sessions() as session:
        stored = await stored_username(session, token=settings.telegram_bot_token)
    if stored is not None:
        return stored
    from telegram.error import TelegramError

    from bot.telegram.doctor import fetch_username

    try:
        return await fetch_username(settings)
    except TelegramError as exc:
        raise BotError(
            f"the bot's @username is unknown (the bot never started with this token and getMe "
            f"failed: {type(exc).__name__}): set BOT_USERNAME, or check TELEGRAM_BOT_TOKEN and "
            "the network"
        ) from None


async def enroll(settings: Settings, args: argparse.Namespace) -> int:
    """Create the episode and print the single-use deep link (and a QR code if asked).

    Everything that can be checked without the database is checked first: a mistake changes
    nothing, not even by creating or migrating the database.
    """
    from bot.cli import check_time_zone, parse_local_datetime

    registry = load_registry(settings, require_approval=False)
    if not registry.is_enabled(args.protocol):
        known = ", ".join(registry.ids())
        why = "not in ENABLED_PROTOCOLS" if args.protocol in registry.loaded_ids() else "unknown"
        raise UsageError(f"--protocol {args.protocol!r} is {why} (enabled: {known})")
    protocol = registry.latest(args.protocol)
    zone = check_time_zone(args.timezone, "--timezone") if args.timezone else settings.timezone
    procedure_at = parse_local_datetime(args.procedure_at, zone)
    enrolment.check_enrolment(
        label=args.label,
        procedure_at=procedure_at,
        language=args.language,
        protocol=protocol,
        baseline_pain=args.baseline_pain,
        time_zone=zone,
        now=SystemClock().now(),
    )
    if args.qr is not None:
        _check_writable(args.qr, "--qr")
    async with offline_context(settings, registry=registry) as ctx:
        ctx.unit = replace(ctx.unit, bot_username=await _bot_username(ctx, settings))
        try:
            invitation = await enrolment.enrol(
                ctx,
                label=args.label,
                procedure_at=procedure_at,
                side=KneeSide(args.side),
                indication=Indication(args.indication),
                language=args.language,
                protocol=protocol,
                baseline_pain=args.baseline_pain,
                time_zone=zone,
                actor="cli",
                new_episode=args.new_episode,
            )
        except enrolment.LabelTakenError as exc:
            raise UsageError(f"{exc}; if it is the same patient, add --new-episode") from None
    output.line(invitation.link)
    if invitation.replaced_link:
        output.line(f"the previous link for {invitation.label} no longer works")
    if args.qr is not None:
        try:
            args.qr.write_bytes(enrolment.qr_png(invitation.link))
        except OSError as exc:
            raise BotError(
                f"{invitation.label} is enrolled, but the QR code could not be written to "
                f"{args.qr} ({exc.strerror}): give the patient the link above"
            ) from None
        output.line(f"QR code written to {args.qr}")
    expiry = invitation.expires_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    output.line(f"single use, expires {expiry} ({zone})")
    return 0


async def db_upgrade(settings: Settings) -> int:
    """Apply migrations and say where the database is."""
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    try:
        await upgrade_database(engine)
        revision = await current_revision(engine)
    finally:
        await engine.dispose()
    output.line(f"database at revision {revision}")
    return 0


async def staff(settings: Settings, command: str, user_id: int | None) -> int:
    """Add, remove or list staff members (on top of STAFF_USER_IDS)."""
    async with offline_context(settings, create=command == "add") as ctx:
        now = ctx.clock.now()
        async with ctx.sessions.begin() as session:
            if command == "list":
                rows = await session.scalars(
                    select(StaffMember).where(StaffMember.removed_at.is_(None))
                )
                lines = [f"{uid}\t(STAFF_USER_IDS)" for uid in sorted(settings.staff_user_ids)]
                lines += [
                    f"{row.user_id}\tadded {row.added_at:%Y-%m-%d} by {row.added_by}"
                    for row in rows
                ]
                for text in lines:
                    output.line(text)
                if not lines:
                    output.line(
                        "no staff members: nobody can act on alerts. Add one with "
                        "`python -m bot staff add <Telegram user id>` or in STAFF_USER_IDS"
                    )
                return 0
            assert user_id is not None
            member = await session.get(StaffMember, user_id)
            if command == "add":
                if member is None:
                    session.add(StaffMember(user_id=user_id, added_at=now, added_by="cli"))
                else:
                    member.removed_at = None
                audit_service.record(
                    session, at=now, actor="cli", action="staff_add", staff_user_id=user_id
                )
            else:
                if member is None or member.removed_at is not None:
                    if user_id in settings.staff_user_ids:
                        raise UsageError(f"{user_id} comes from STAFF_USER_IDS: remove it there")
                    raise UsageError(f"{user_id} is not a staff member")
                member.removed_at = now
                audit_service.record(
                    session, at=now, actor="cli", action="staff_remove", staff_user_id=user_id
                )
    output.line(f"staff member {user_id} {'added' if command == 'add' else 'removed'}")
    return 0


async def audit(
    settings: Settings, *, since: datetime | None, action: str | None, limit: int
) -> int:
    """Print audit events as tab-separated lines ("no events" when none matches)."""
    if action is not None and action not in AUDIT_ACTIONS:
        raise UsageError(
            f"--action {action!r} is unknown; known actions: {', '.join(sorted(AUDIT_ACTIONS))}"
        )
    async with offline_context(settings, create=False) as ctx, ctx.sessions() as session:
        events = await audit_service.list_events(session, since=since, action=action, limit=limit)
    if not events:
        output.line("no events")
    for event in events:
        details = " ".join(f"{k}={v}" for k, v in sorted(event.details.items()))
        output.line(
            f"{event.at:%Y-%m-%d %H:%M:%S}Z\t{event.actor}\t{event.action}\t"
            f"episode={event.episode_id or '-'}\talert={event.alert_id or '-'}\t{details}"
        )
    return 0


async def export(settings: Settings, *, fmt: str, since: datetime | None, out: Path) -> int:
    """Write the CSV or FHIR export to ``out`` (streamed: memory stays flat), then audit it."""
    from bot.services import export as export_service

    _check_writable(out, "--out")
    async with offline_context(settings, create=False) as ctx:
        with out.open("w", encoding="utf-8", newline="") as handle:
            if fmt == "csv":
                count = await export_service.write_csv(ctx, handle, since=since)
            else:
                count = await export_service.write_fhir(ctx, handle, since=since)
        async with ctx.sessions.begin() as session:
            audit_service.record(
                session, at=ctx.clock.now(), actor="cli", action="export", format=fmt, rows=count
            )
    what = "answers" if fmt == "csv" else "Bundle entries"
    output.line(f"{count} {what} written to {out}")
    return 0


async def report(
    settings: Settings, *, since: datetime | None, out_dir: Path, language: str
) -> int:
    """Print the unit statistics and write them as report.png and report.html in ``out_dir``."""
    from bot.services import report as report_service

    _check_language(language, available_languages())
    async with offline_context(settings, create=False) as ctx:
        figures = await report_service.build_report(ctx, since=since)
    png = report_service.render_png(figures, language)
    written = _write_files(
        out_dir,
        {
            "report.png": png,
            "report.html": report_service.render_html(figures, language, png).encode("utf-8"),
        },
    )
    output.line(report_service.render_table(figures, language))
    output.line(f"written: {', '.join(str(path) for path in written)}")
    return 0


async def outcomes(
    settings: Settings,
    *,
    since: datetime | None,
    indication: str | None,
    out_dir: Path,
    language: str,
) -> int:
    """Print the outcomes and write outcomes.html, outcomes.png, relief.png and outcomes.json."""
    from bot.services import outcomes as outcomes_service
    from bot.services import outcomes_render

    _check_language(language, available_languages())
    async with offline_context(settings, create=False) as ctx:
        figures = await outcomes_service.build_outcomes(ctx, since=since, indication=indication)
    pictures = {
        "outcomes.png": outcomes_render.render_png(figures, language),
        "relief.png": outcomes_render.render_relief_png(figures, language),
    }
    written = _write_files(
        out_dir,
        {
            **pictures,
            "outcomes.html": outcomes_render.render_html(figures, language, pictures).encode(),
            "outcomes.json": outcomes_render.render_json(figures).encode(),
        },
    )
    output.line(outcomes_render.render_table(figures, language))
    output.line(f"written: {', '.join(str(path) for path in written)}")
    return 0


def _write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` into ``folder`` (created if needed); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def bench_command(args: argparse.Namespace) -> int:
    """``bench``: :mod:`bot.bench`, installed with the bot (results go to ./bench/)."""
    from bot.bench.run import main as bench_main

    return bench_main(quick=args.quick, postgres=args.postgres, only=args.only)


async def erase(settings: Settings, *, label: str, confirmed: bool) -> int:
    """Remove a patient's answers and identifiers; the patient row and an audit event remain.

    Erasure cannot be undone, so it is confirmed by typing the label (``--yes`` for scripts), and
    staff are told whether the patient asked for it (``/delete``) or the unit decides alone.
    """
    if not confirmed and not sys.stdin.isatty():
        raise UsageError("erase cannot be undone: run it in a terminal to confirm, or add --yes")
    async with offline_context(settings, create=False) as ctx:
        candidate = await erasure.candidate(ctx, label=label)
        asked = _erasure_request(candidate.requested_at, settings.timezone)
        if not confirmed:
            answer = await asyncio.to_thread(
                input,
                f"Erase everything stored about {label}? {asked}. This cannot be undone. "
                "Type the label to confirm: ",
            )
            if answer.strip() != label:
                output.error(f"nothing erased: the answer was not {label}")
                return 1
        report = await erasure.erase(ctx, label=label, actor="cli")
    rows = ", ".join(f"{table} {count}" for table, count in sorted(report.rows.items()))
    output.line(f"{label} erased: {rows or 'no rows'}; {report.files} local file(s) deleted")
    output.line(f"{asked}.")
    output.line(
        "kept: the patient row (label, dates) and a patient_erased audit event; Telegram's own "
        "copies (the chat, alert cards in the staff group) must be deleted there"
    )
    return 0


def _erasure_request(requested_at: datetime | None, zone: str) -> str:
    """Whether the patient asked: staff must know if they act on a request or on their own."""
    if requested_at is None:
        return "The patient has not asked for it (no /delete request)"
    when = requested_at.astimezone(ZoneInfo(zone))
    return f"The patient asked for it with /delete on {when:%Y-%m-%d %H:%M}"


async def followup(settings: Settings, args: argparse.Namespace) -> int:
    """``followup pause|resume|stop|checkin-now|move``: staff control, audited as ``cli``.

    The command line never talks to Telegram: a stopped patient is not told, and a check-in
    made due now is sent by the running bot at its next wake-up (within its safety tick).
    """
    from bot.cli import parse_local_datetime

    lang, label, command = CLI_LANGUAGE, args.label, args.followup_command
    async with offline_context(settings, create=False) as ctx:
        await _require_follow_up(ctx, label)
        if command == "pause":
            await followup_service.pause(ctx, label=label, actor="cli")
            output.line(
                t(lang, "{label}: follow-up paused; nothing is sent until resumed.", label=label)
            )
        elif command == "resume":
            await followup_service.resume(ctx, label=label, actor="cli")
            output.line(t(lang, "{label}: follow-up resumed at its next check-in.", label=label))
        elif command == "stop":
            await followup_service.stop(ctx, label=label, actor="cli", reason=args.reason)
            output.line(
                t(
                    lang,
                    "{label}: follow-up stopped. The patient was not told: call them if needed.",
                    label=label,
                )
            )
        elif command == "checkin-now":
            if await followup_service.checkin_now(ctx, label=label, actor="cli"):
                output.line(
                    t(
                        lang,
                        "{label}: the next check-in is due now; the running bot sends it within a minute.",
                        label=label,
                    )
                )
            else:
                output.line(t(lang, "{label}: no check-in is left to send.", label=label))
        else:
            zone = await followup_service.time_zone_of(ctx, label=label)
            procedure_at = parse_local_datetime(args.procedure_at, zone)
            moved = await followup_service.move_procedure(
                ctx, label=label, procedure_at=procedure_at, actor="cli"
            )
            output.line(
                tn(
                    lang,
                    "{label}: procedure moved; {count} future check-in planned again.",
                    "{label}: procedure moved; {count} future check-ins planned again.",
                    moved,
                    label=label,
                )
            )
    return 0


async def _require_follow_up(ctx: ServiceContext, label: str) -> None:
    """The CLI's own refusal for an unknown label (the service's words are the staff chat's)."""
    async with ctx.sessions() as session:
        patient = await session.scalar(select(Patient).where(Patient.label == label))
        if patient is None or patient.erased_at is not None:
            raise UsageError(f"no patient has the label {label!r}")
        if await session.scalar(select(Episode.id).where(Episode.patient_id == patient.id)) is None:
            raise UsageError(f"{label} has no follow-up: enrol the patient first")


def protocol_command(args: argparse.Namespace) -> int:
    """``protocol check`` and ``protocol show`` (no database needed)."""
    protocol = load_protocol_file(args.file)
    missing = languages_missing(protocol)
    if missing:  # valid, but run would refuse it: say so now
        raise ProtocolError(str(args.file), missing)
    if args.protocol_command == "check":
        approval = (
            f"approved by {protocol.approved_by} on {protocol.approved_on}"
            if protocol.approved
            else "NOT approved yet (run refuses it unless ALLOW_UNAPPROVED_PROTOCOL=true)"
        )
        output.line(
            f"{args.file}: valid — {protocol.id} v{protocol.version}, "
            f"{len(protocol.checkins)} check-ins, {len(protocol.rules)} rules; {approval}"
        )
        for path, message in late_red_flags(protocol):
            output.warning(f"{args.file}: {path}: {message}")
        return 0
    from bot.cli import check_time_zone, parse_local_datetime

    zone = check_time_zone(args.timezone or "Europe/Paris", "--timezone")
    procedure_at = parse_local_datetime(args.procedure_at, zone)
    _check_language(args.language, protocol.languages)
    planned = plan_checkins(
        protocol, procedure_at=procedure_at, time_zone=zone, indication=Indication(args.indication)
    )
    output.line(f"{protocol.title.get(args.language)} (v{protocol.version}) — {zone}")
    for item in planned:
        when = format_local(item.due_at, args.language, zone)
        until = format_local(item.window_ends_at, args.language, zone, "short")
        state = "" if item.status == CheckInStatus.SCHEDULED else f"  [cancelled: {item.reason}]"
        questions = ", ".join(
            q.id for q in protocol.questions_for(item.checkin_id, Indication(args.indication))
        )
        output.line(f"{item.checkin_id:<11} {when:<32} until {until}{state}")
        output.line(f"{'':<11} {questions}")
    output.line()
    for row in coverage_table(protocol, Indication(args.indication), args.language):
        output.line(row)
    return 0


def coverage_table(protocol: Protocol, indication: Indication, language: str) -> list[str]:
    """Red flag × check-in, ✓ where the flag is asked: what a physician signs off on."""
    checkins = [c.id for c in in_day_order(protocol, indication)]
    flag_width = max(len(flag) for flag in protocol.red_flags)
    rows = [
        f"Red flags asked (✓) per check-in, {indication.value}; "
        "'from' is the first day each can be present:",
        f"{'':<{flag_width}}  {'from':<4}  " + " ".join(checkins),
    ]
    for coverage in flag_coverage(protocol, indication):
        start = "-" if coverage.earliest_day is None else f"D{coverage.earliest_day}"
        cells = " ".join(f"{'✓' if c in coverage.asked_at else '·':<{len(c)}}" for c in checkins)
        label = protocol.red_flags[coverage.flag].label.get(language)
        rows.append(f"{coverage.flag:<{flag_width}}  {start:<4}  {cells}  {label}")
    return rows
