"""The one command line: ``python -m bot <command>``.

Every expected failure (bad setting, bad argument, bad protocol, bad token) ends in one clear line
on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import output
from bot.config import Settings, load_settings
from bot.domain.protocol import Indication, KneeSide
from bot.errors import BotError, ConfigError, NotFoundError, ProtocolError, UsageError
from bot.logs import configure_logging


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        output.error(f"{self.prog}: {message} (see --help)")
        raise SystemExit(2)


def check_time_zone(name: str, option: str) -> str:
    """``name`` when it is an IANA time zone; a one-line error naming ``option`` otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"{option} {name!r} is not a time zone: use an IANA name like Europe/Paris"
        ) from None
    return name


def parse_local_datetime(value: str, zone: str) -> datetime:
    """'2026-12-01 09:30' in ``zone`` → aware datetime; a clear error otherwise."""
    try:
        naive = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M")  # noqa: DTZ007 - zone added below
    except ValueError:
        raise UsageError(
            f'--procedure-at {value!r}: expected local date and time as "YYYY-MM-DD HH:MM"'
        ) from None
    return naive.replace(tzinfo=ZoneInfo(zone))


def parse_local_date(value: str, zone: str) -> datetime:
    """``--since``: '2026-12-01' (the start of that day) or '2026-12-01 14:00', local to ``zone``.

    Every command that filters by time takes the same form, so a date typed for one works in all.
    """
    for pattern in ("%Y-%m-%d", "%Y-%m-%d %H:%M"):
        try:
            moment = datetime.strptime(value.strip(), pattern)  # noqa: DTZ007 - zone added below
        except ValueError:
            continue
        return moment.replace(tzinfo=ZoneInfo(zone))
    raise UsageError(
        f'--since {value!r}: expected a local date as "YYYY-MM-DD", optionally with a time '
        '("YYYY-MM-DD HH:MM")'
    )


def _positive(value: str) -> int:
    """argparse type for counts: a whole number above zero."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be 1 or more")
    return number


SINCE_HELP = 'only from this local date, "YYYY-MM-DD" or "YYYY-MM-DD HH:MM"'
#: Commands that run once and print a result: their output is for people, so logs below WARNING
#: (a structured line per change) stay out of it.
ONE_SHOT_LOG_LEVEL = "WARNING"


def build_parser() -> argparse.ArgumentParser:
    """All commands and their options."""
    parser = _Parser(prog="python -m bot", description="Knee cryoneurolysis follow-up bot.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run the bot (the sandbox when no token is set)")
    run.add_argument("--webhook", action="store_true", help="receive updates by webhook")
    commands.add_parser(
        "doctor", help="check the production settings against Telegram (run does it at start)"
    )
    commands.add_parser("demo", help="play the sandbox script once and exit")
    bench = commands.add_parser("bench", help="benchmarks against the fake Telegram server")
    bench.add_argument("--quick", action="store_true", help="1,000-check-in burst, SQLite only")
    bench.add_argument("--postgres", help="PostgreSQL URL (default: TEST_DATABASE_URL)")
    bench.add_argument("--only", help="comma-separated sections to (re)run, e.g. scale,replies")

    enroll = commands.add_parser("enroll", help="enrol a patient and print the deep link")
    enroll.add_argument("--label", required=True, help="the unit's pseudonymous patient id")
    enroll.add_argument("--procedure-at", required=True, help='local time, "YYYY-MM-DD HH:MM"')
    enroll.add_argument("--side", required=True, choices=[s.value for s in KneeSide])
    enroll.add_argument("--indication", required=True, choices=[i.value for i in Indication])
    enroll.add_argument("--language", required=True, help="fr or en")
    enroll.add_argument("--protocol", default="knee-cryoneurolysis", help="protocol id")
    enroll.add_argument("--baseline-pain", type=int, choices=range(11), metavar="0-10")
    enroll.add_argument("--timezone", help="IANA zone of the patient (default TIMEZONE)")
    enroll.add_argument("--qr", type=Path, help="also write the link as a QR code PNG here")
    enroll.add_argument(
        "--new-episode",
        action="store_true",
        help="the label is already enrolled: start a new follow-up for the same patient "
        "(or replace a link not opened yet)",
    )

    protocol = commands.add_parser("protocol", help="check or show a protocol file")
    protocol_commands = protocol.add_subparsers(
        dest="protocol_command", required=True, parser_class=_Parser
    )
    check = protocol_commands.add_parser("check", help="validate a protocol file")
    check.add_argument("file", type=Path)
    show = protocol_commands.add_parser("show", help="print the timeline for a procedure time")
    show.add_argument("file", type=Path)
    show.add_argument("--procedure-at", required=True)
    show.add_argument(
        "--indication", default="osteoarthritis", choices=[i.value for i in Indication]
    )
    show.add_argument("--timezone")
    show.add_argument("--language", default="fr")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    db_commands.add_parser("upgrade", help="apply pending migrations")

    staff = commands.add_parser("staff", help="manage staff members without a restart")
    staff_commands = staff.add_subparsers(dest="staff_command", required=True, parser_class=_Parser)
    for name in ("add", "remove"):
        sub = staff_commands.add_parser(name)
        sub.add_argument("user_id", type=int)
    staff_commands.add_parser("list")

    audit = commands.add_parser("audit", help="print the audit trail")
    audit.add_argument("--since", help=SINCE_HELP)
    audit.add_argument("--action", help="only events of this action, e.g. enrol")
    audit.add_argument("--limit", type=_positive, default=200, help="at most this many events")

    followup = commands.add_parser(
        "followup", help="pause, resume, stop a follow-up, move its procedure, check in now"
    )
    followup_commands = followup.add_subparsers(
        dest="followup_command", required=True, parser_class=_Parser
    )
    for name, text in (
        ("pause", "send nothing until resumed (nothing counts as missed)"),
        ("resume", "continue with the next future check-in"),
        ("stop", "end the follow-up (the patient is not told: call them if needed)"),
        ("checkin-now", "make the next check-in due now (the running bot sends it)"),
        ("move", "correct the procedure date; only future check-ins are moved"),
    ):
        sub = followup_commands.add_parser(name, help=text)
        sub.add_argument("--label", required=True, help="the unit's patient id")
        if name == "stop":
            sub.add_argument("--reason", help="why (kept with the follow-up, not in logs)")
        if name == "move":
            sub.add_argument(
                "--procedure-at", required=True, help='patient\'s local time, "YYYY-MM-DD HH:MM"'
            )

    erase = commands.add_parser(
        "erase", help="erase a patient's data, keeping only an audit stub (after /delete)"
    )
    erase.add_argument("--label", required=True, help="the unit's patient id")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    export = commands.add_parser("export", help="export answers as CSV or a FHIR R4 Bundle")
    export.add_argument("--format", required=True, choices=["csv", "fhir"])
    export.add_argument("--since", help=SINCE_HELP)
    export.add_argument("--out", required=True, type=Path, help="the file to write")

    report = commands.add_parser("report", help="unit statistics: table, PNG and HTML")
    report.add_argument("--since", help=SINCE_HELP)
    report.add_argument("--out-dir", type=Path, default=Path("."), help="where to write files")
    report.add_argument("--language", help="fr or en (default: STAFF_LANGUAGE)")

    outcomes = commands.add_parser(
        "outcomes",
        help="outcomes to publish: pain, MCID, KOOS JR, WHO-5, opioids, relief duration",
    )
    outcomes.add_argument("--since", help='only procedures from this local date, "YYYY-MM-DD"')
    outcomes.add_argument(
        "--indication",
        choices=[
            "osteoarthritis",
            "chronic_pain",
            "knee_replacement",
            *(i.value for i in Indication),
        ],
        help="one group (knee_replacement: before and after) or one indication",
    )
    outcomes.add_argument("--out-dir", type=Path, default=Path("."), help="where to write files")
    outcomes.add_argument("--language", help="fr or en (default: STAFF_LANGUAGE)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "protocol":
            _use_locales_dir_if_valid()  # before the parser is imported
            from bot.cli.commands import protocol_command

            return protocol_command(args)
        if args.command == "bench":
            from bot.cli.commands import bench_command

            return bench_command(args)
        settings = load_settings()
        if settings.locales_dir is not None:
            from bot import i18n

            i18n.use_locales_dir(settings.locales_dir)  # before the parser reads its words
        configure_logging(settings.log_format, _log_level(args, settings))
        return asyncio.run(_dispatch(args, settings))
    except (ConfigError, UsageError, ProtocolError, NotFoundError) as exc:
        output.error(str(exc))
        return 2
    except BotError as exc:
        output.error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import commands

    if args.command == "run":
        if settings.sandbox:
            from bot.sandbox.demo import run_sandbox

            return await run_sandbox(settings, keep_running=True, stop=_stop_event())
        return await commands.run_bot(settings, stop=_stop_event(), webhook=args.webhook)
    if args.command == "doctor":
        return await commands.doctor(settings)
    if args.command == "demo":
        from bot.sandbox.demo import run_sandbox

        return await run_sandbox(settings, keep_running=False, stop=_stop_event())
    if args.command == "enroll":
        return await commands.enroll(settings, args)
    if args.command == "db":
        return await commands.db_upgrade(settings)
    if args.command == "staff":
        return await commands.staff(settings, args.staff_command, getattr(args, "user_id", None))
    if args.command == "audit":
        since = parse_local_date(args.since, settings.timezone) if args.since else None
        return await commands.audit(settings, since=since, action=args.action, limit=args.limit)
    if args.command == "followup":
        return await commands.followup(settings, args)
    if args.command == "erase":
        return await commands.erase(settings, label=args.label, confirmed=args.yes)
    if args.command == "outcomes":
        since = parse_local_date(args.since, settings.timezone) if args.since else None
        return await commands.outcomes(
            settings,
            since=since,
            indication=args.indication,
            out_dir=args.out_dir,
            language=args.language or settings.staff_language,
        )
    if args.command in ("export", "report"):
        since = parse_local_date(args.since, settings.timezone) if args.since else None
        if args.command == "export":
            return await commands.export(settings, fmt=args.format, since=since, out=args.out)
        return await commands.report(
            settings,
            since=since,
            out_dir=args.out_dir,
            language=args.language or settings.staff_language,
        )
    raise UsageError(f"unknown command {args.command}")


def _use_locales_dir_if_valid() -> None:
    """``protocol`` needs no settings, but checks its languages' files in LOCALES_DIR too."""
    try:
        settings = load_settings()
    except ConfigError:
        return
    if settings.locales_dir is not None:
        from bot import i18n

        i18n.use_locales_dir(settings.locales_dir)


def _log_level(args: argparse.Namespace, settings: Settings) -> str:
    """LOG_LEVEL for the running bot; WARNING and above for what prints its own output."""
    if args.command == "run" and not settings.sandbox:
        return settings.log_level
    if args.command in ("run", "demo") and "log_level" in settings.model_fields_set:
        return settings.log_level  # the sandbox's transcript is its output; LOG_LEVEL overrides
    quieter = logging.getLevelName(ONE_SHOT_LOG_LEVEL) > logging.getLevelName(settings.log_level)
    return ONE_SHOT_LOG_LEVEL if quieter else settings.log_level


def _stop_event() -> asyncio.Event:
    """An event set by SIGINT/SIGTERM, for a clean shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


if __name__ == "__main__":
    sys.exit(main())
