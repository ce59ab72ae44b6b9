"""What each CLI command does (the parser lives in ``bot.cli``)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from telegram.error import TelegramError

from bot import output
from bot.clock import SystemClock
from bot.config import Settings
from bot.db.models import StaffMember
from bot.db.session import create_engine, current_revision, make_sessionmaker, upgrade_database
from bot.domain.protocol import Indication, KneeSide
from bot.domain.schedule import plan_checkins
from bot.domain.states import CheckInStatus
from bot.errors import BotError, UsageError
from bot.i18n import format_local, t, tn
from bot.protocols import load_protocol_file
from bot.services import audit as audit_service
from bot.services import enrolment, erasure
from bot.services import followup as followup_service
from bot.services.context import ProtocolStore, ServiceContext
from bot.services.ports import DeliveryError, OutgoingMessage, SentRef
from bot.telegram.runtime import BotRuntime, load_registry, unit_settings


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


@asynccontextmanager
async def offline_context(settings: Settings) -> AsyncIterator[ServiceContext]:
    """Database + protocols, no Telegram: for enrol, staff and audit commands."""
    registry = load_registry(settings, require_approval=False)
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    try:
        await upgrade_database(engine)
        clock = SystemClock()
        sessions = make_sessionmaker(engine)
        store = ProtocolStore(registry)
        async with sessions.begin() as session:
            await store.register_all(session, clock)
        yield ServiceContext(
            sessions=sessions,
            messenger=OfflineMessenger(),
            clock=clock,
            unit=unit_settings(settings, settings.bot_username or "cryo_followup_bot"),
            protocols=store,
            process_id="cli",
        )
    finally:
        await engine.dispose()


async def run_bot(settings: Settings, *, stop: asyncio.Event, webhook: bool) -> int:
    """The long-running bot against real Telegram: polling, or a webhook with its secret token;
    ``/healthz`` and ``/metrics`` on METRICS_PORT when set."""
    from bot.telegram.ops import OpsServer
    from bot.telegram.webhook import plan_webhook

    plan = plan_webhook(settings) if webhook else None
    runtime = await BotRuntime.create(settings)
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


async def enroll(
    settings: Settings, args: argparse.Namespace, procedure_at: datetime, zone: str
) -> int:
    """Create the episode and print the single-use deep link (and a QR code if asked)."""
    async with offline_context(settings) as ctx:
        try:
            protocol = ctx.protocols.registry.latest(args.protocol)
        except KeyError:
            known = ", ".join(ctx.protocols.registry.ids())
            raise UsageError(f"--protocol {args.protocol!r} is unknown (known: {known})") from None
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
        )
    output.line(invitation.link)
    if args.qr is not None:
        args.qr.write_bytes(enrolment.qr_png(invitation.link))
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
    async with offline_context(settings) as ctx:
        now = ctx.clock.now()
        async with ctx.sessions.begin() as session:
            if command == "list":
                rows = await session.scalars(
                    select(StaffMember).where(StaffMember.removed_at.is_(None))
                )
                for uid in sorted(settings.staff_user_ids):
                    output.line(f"{uid}\t(STAFF_USER_IDS)")
                for row in rows:
                    output.line(f"{row.user_id}\tadded {row.added_at:%Y-%m-%d} by {row.added_by}")
                return 0
            assert user_id is not None
            member = await session.get(StaffMember, user_id)
            if command == "add":
                if member is None:
                    session.add(StaffMember(user_id=user_id, added_at=now, added_by="cli"))
                else:
                    member.removed_at = None
                output.line(f"staff member {user_id} added")
            else:
                if member is None or member.removed_at is not None:
                    if user_id in settings.staff_user_ids:
                        raise UsageError(f"{user_id} comes from STAFF_USER_IDS: remove it there")
                    raise UsageError(f"{user_id} is not a staff member")
                member.removed_at = now
                output.line(f"staff member {user_id} removed")
            audit_service.record(
                session, at=now, actor="cli", action=f"staff_{command}", staff_user_id=user_id
            )
    return 0


async def audit(
    settings: Settings, *, since: datetime | None, action: str | None, limit: int
) -> int:
    """Print audit events as tab-separated lines."""
    async with offline_context(settings) as ctx, ctx.sessions() as session:
        events = await audit_service.list_events(session, since=since, action=action, limit=limit)
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

    async with offline_context(settings) as ctx:
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

    async with offline_context(settings) as ctx:
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
    """``bench``: the code lives in the repository's bench/ folder (not installed with the bot)."""
    try:
        from bench.run import main as bench_main
    except ImportError:
        raise UsageError("run `python -m bot bench` from the repository's root folder") from None
    return bench_main(quick=args.quick, postgres=args.postgres, only=args.only)


async def erase(settings: Settings, *, label: str) -> int:
    """Remove a patient's answers and identifiers; the patient row and an audit event remain."""
    async with offline_context(settings) as ctx:
        report = await erasure.erase(ctx, label=label, actor="cli")
    rows = ", ".join(f"{table} {count}" for table, count in sorted(report.rows.items()))
    output.line(f"{label} erased: {rows or 'no rows'}; {report.files} local file(s) deleted")
    output.line(
        "kept: the patient row (label, dates) and a patient_erased audit event; Telegram's own "
        "copies (the chat, alert cards in the staff group) must be deleted there"
    )
    return 0


async def followup(settings: Settings, args: argparse.Namespace) -> int:
    """``followup pause|resume|stop|checkin-now|move``: staff control, audited as ``cli``.

    The command line never talks to Telegram: a stopped patient is not told, and a check-in
    made due now is sent by the running bot at its next wake-up (within its safety tick).
    """
    from bot.cli import parse_local_datetime

    lang, label, command = followup_service.STAFF_LANGUAGE, args.label, args.followup_command
    async with offline_context(settings) as ctx:
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


def protocol_command(args: argparse.Namespace) -> int:
    """``protocol check`` and ``protocol show`` (no database needed)."""
    protocol = load_protocol_file(args.file)
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
        return 0
    zone = args.timezone or "Europe/Paris"
    from bot.cli import parse_local_datetime

    procedure_at = parse_local_datetime(args.procedure_at, zone)
    if args.language not in protocol.languages:
        raise UsageError(f"--language must be one of {', '.join(protocol.languages)}")
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
    return 0
