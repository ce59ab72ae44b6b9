"""``python -m bot doctor``: a preflight of a production configuration, also run by ``run``.

Every setting that can lose an alert without a word is checked against the real thing: the
token with getMe, each alert chat with getChat and getChatMember (the bot is in it and may
write), staff users, approved protocols, the database revision, the media folder and the time
zones of live follow-ups. Each problem is one line naming the setting and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from telegram import Bot, Chat
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
)
from telegram.request import BaseRequest

from bot.config import Settings
from bot.db.models import Episode, StaffMember
from bot.db.session import create_engine, current_revision, migration_revisions
from bot.domain.states import EpisodeStatus
from bot.errors import ConfigError, ProtocolError
from bot.protocols import ProtocolRegistry
from bot.telegram.app import settings_requests
from bot.telegram.chat_rights import cannot_post
from bot.wiring import load_registry

#: Follow-ups whose check-ins are still ahead: their time zone must exist on this machine.
LIVE = (EpisodeStatus.INVITED, EpisodeStatus.ACTIVE, EpisodeStatus.PAUSED)


@dataclass(frozen=True)
class Problem:
    """One thing to fix; ``loses_alerts`` problems stop ``run``, the others are warnings."""

    setting: str
    text: str
    loses_alerts: bool = True

    def line(self) -> str:
        """The one line shown: the setting first, then what is wrong and the fix."""
        return f"{self.setting}: {self.text}"


@dataclass
class Findings:
    """What the doctor saw: the problems, and what was checked (for the summary line)."""

    problems: list[Problem]
    checked: list[str]

    @property
    def blocking(self) -> list[Problem]:
        """The problems that would lose an alert."""
        return [problem for problem in self.problems if problem.loses_alerts]


async def diagnose(settings: Settings, *, starting: bool = False) -> Findings:
    """Every check; ``starting`` (from ``run``) skips the pending migrations, which run applies."""
    findings = Findings(problems=[], checked=[])
    _check_protocols(settings, findings)
    _check_media_dir(settings.media_dir, findings)
    staff_in_database = await _check_database(settings, findings, starting=starting)
    if not settings.staff_user_ids and not staff_in_database:
        findings.problems.append(
            Problem(
                "STAFF_USER_IDS",
                "no staff user, so nobody can acknowledge an alert: set STAFF_USER_IDS to the "
                "staff's Telegram user ids, or run `python -m bot staff add <user id>`",
            )
        )
    else:
        findings.checked.append(f"{len(settings.staff_user_ids) + staff_in_database} staff user(s)")
    await _check_telegram(settings, findings)
    return findings


def _check_protocols(settings: Settings, findings: Findings) -> None:
    try:
        registry = load_registry(settings, require_approval=False)
    except ConfigError as exc:
        findings.problems.append(Problem("ENABLED_PROTOCOLS", _after_setting(str(exc))))
        return
    except ProtocolError as exc:
        first = str(exc).splitlines()[0]
        findings.problems.append(
            Problem("SCHEDULES_DIR", f"{first} (`python -m bot protocol check <file>`)")
        )
        return
    if not settings.allow_unapproved_protocol:
        for protocol in registry.enrollable():
            if not protocol.approved:
                findings.problems.append(
                    Problem(
                        "ENABLED_PROTOCOLS",
                        f"{protocol.id} v{protocol.version} can be enrolled but no physician "
                        "approved it: fill approved_by and approved_on in its file, or leave it "
                        f"out of ENABLED_PROTOCOLS (now: {_enabled(settings, registry)})",
                    )
                )
    findings.checked.append(f"protocols {', '.join(registry.ids())}")


def _enabled(settings: Settings, registry: ProtocolRegistry) -> str:
    return ",".join(settings.enabled_protocols) or f"every file, {','.join(registry.ids())}"


def _after_setting(message: str) -> str:
    """A ConfigError's text without the setting's name it starts with (Problem adds it)."""
    return message.split(" ", 1)[1] if " " in message else message


def _check_media_dir(folder: Path, findings: Findings) -> None:
    """Photos are kept here: the folder, or the nearest existing parent that creates it."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        problem = f"{folder} is not a folder: point MEDIA_DIR at a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = (
            f"cannot write in {existing.resolve()}: patients' photos would not be kept; give "
            "the bot's user write access or point MEDIA_DIR elsewhere"
        )
    else:
        findings.checked.append(f"media in {folder}")
        return
    findings.problems.append(Problem("MEDIA_DIR", problem, loses_alerts=False))


async def _check_database(settings: Settings, findings: Findings, *, starting: bool) -> int:
    """Revision, live follow-ups' time zones; returns the staff members stored there."""
    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        findings.checked.append(f"no database yet at {missing} (run creates it)")
        return 0
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    head, known = migration_revisions()
    try:
        revision = await current_revision(engine)
        if revision is not None and revision not in known:
            findings.problems.append(
                Problem(
                    "DATABASE_URL",
                    f"the database is at revision {revision}, which this version of the bot "
                    "does not know (a newer version migrated it): run that version",
                )
            )
            return 0
        if revision != head and not starting:
            findings.problems.append(
                Problem(
                    "DATABASE_URL",
                    f"the database is at revision {revision or 'none'}, this version needs "
                    f"{head}: run `python -m bot db upgrade` (run also applies it at start)",
                    loses_alerts=False,
                )
            )
        if revision is None:
            return 0
        async with engine.connect() as connection:
            staff = await connection.scalar(
                select(func.count())
                .select_from(StaffMember)
                .where(StaffMember.removed_at.is_(None))
            )
            zones = await connection.scalars(
                select(Episode.time_zone).where(Episode.status.in_(LIVE)).distinct()
            )
            unknown = sorted(zone for zone in zones if not _zone_exists(zone))
    except (SQLAlchemyError, OSError) as exc:
        findings.problems.append(
            Problem(
                "DATABASE_URL",
                f"cannot read the database ({type(exc).__name__}): check DATABASE_URL and that "
                "the server is up",
            )
        )
        return 0
    finally:
        await engine.dispose()
    if unknown:
        findings.problems.append(
            Problem(
                "TIMEZONE",
                f"follow-ups in progress use time zone(s) {', '.join(unknown)}, unknown on this "
                "machine: their check-ins cannot be planned; install the tzdata package",
            )
        )
    findings.checked.append(f"database at {revision}")
    return int(staff or 0)


def _missing_sqlite_file(database_url: str) -> str | None:
    """The SQLite file DATABASE_URL names when it does not exist (the doctor creates nothing)."""
    url = make_url(database_url)
    path = url.database or ""
    if url.get_backend_name() == "sqlite" and path not in ("", ":memory:"):
        return None if Path(path).exists() else path
    return None


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


async def _check_telegram(settings: Settings, findings: Findings) -> None:
    """getMe, then each alert chat; nothing more once Telegram is out of reach."""
    if settings.sandbox:
        findings.problems.append(
            Problem(
                "TELEGRAM_BOT_TOKEN",
                "not set, so `run` starts the sandbox, which reaches no patient and no staff: "
                "set the token @BotFather gave",
            )
        )
        return
    api_request, updates_request = settings_requests(settings)
    bot = _bot(settings, api_request, updates_request)
    try:
        try:
            await bot.initialize()  # getMe
        except InvalidToken:
            findings.problems.append(
                Problem(
                    "TELEGRAM_BOT_TOKEN",
                    "Telegram refused the token: copy it again from @BotFather (/mybots → API "
                    "Token); a revoked token must be replaced",
                )
            )
            return
        except NetworkError as exc:
            findings.problems.append(_unreachable(settings, exc))
            return
        findings.checked.append(f"bot @{bot.username}")
        if settings.bot_username is not None and settings.bot_username != bot.username:
            findings.problems.append(
                Problem(
                    "BOT_USERNAME",
                    f"is {settings.bot_username} but the token belongs to @{bot.username}: "
                    "enrolment links would open another bot; set BOT_USERNAME="
                    f"{bot.username} or leave it empty",
                )
            )
        if settings.staff_chat_id is None:
            findings.problems.append(
                Problem(
                    "STAFF_CHAT_ID",
                    "not set, so alerts go nowhere: add the bot to the staff group and set "
                    "STAFF_CHAT_ID to the group's id (a negative number like -1001234567890)",
                )
            )
        else:
            await _check_chat(bot, "STAFF_CHAT_ID", settings.staff_chat_id, findings)
        if settings.oncall_chat_id is not None:
            await _check_chat(bot, "ONCALL_CHAT_ID", settings.oncall_chat_id, findings)
    finally:
        await bot.shutdown()
        await api_request.shutdown()
        await updates_request.shutdown()


async def fetch_username(settings: Settings) -> str:
    """getMe's @username (``enroll`` before the bot's first start)."""
    api_request, updates_request = settings_requests(settings)
    bot = _bot(settings, api_request, updates_request)
    try:
        await bot.initialize()
        return bot.username
    finally:
        await bot.shutdown()
        await api_request.shutdown()
        await updates_request.shutdown()


def _bot(settings: Settings, api_request: BaseRequest, updates_request: BaseRequest) -> Bot:
    return Bot(
        settings.telegram_bot_token,
        base_url=settings.telegram_api_base_url,
        base_file_url=settings.telegram_api_base_url.removesuffix("/bot") + "/file/bot",
        request=api_request,
        get_updates_request=updates_request,
    )


def _unreachable(settings: Settings, exc: Exception) -> Problem:
    via = (
        f"through TELEGRAM_PROXY_URL {settings.telegram_proxy_url}"
        if settings.telegram_proxy_url
        else "directly or through HTTPS_PROXY"
    )
    return Problem(
        "TELEGRAM_API_BASE_URL",
        f"cannot reach {settings.telegram_api_base_url} {via} ({type(exc).__name__}): check "
        "the network, and set HTTPS_PROXY or TELEGRAM_PROXY_URL if the hospital uses a proxy",
    )


async def _check_chat(bot: Bot, setting: str, chat_id: int, findings: Findings) -> None:
    """The bot is in the chat and may write there."""
    try:
        chat = await bot.get_chat(chat_id)
        if chat.type == Chat.PRIVATE:
            findings.checked.append(f"{setting} {chat_id} (private chat)")
            return
        member = await bot.get_chat_member(chat_id, bot.id)
    except ChatMigrated as exc:
        findings.problems.append(
            Problem(
                setting,
                f"the group {chat_id} became a supergroup: set {setting}={exc.new_chat_id}",
            )
        )
        return
    except Forbidden as exc:
        findings.problems.append(
            Problem(
                setting,
                f"the bot cannot reach chat {chat_id} ({exc.message}): add the bot to the "
                f"group again, or set {setting} to the group it is in",
            )
        )
        return
    except BadRequest as exc:
        findings.problems.append(
            Problem(
                setting,
                f"Telegram answers {exc.message!r} for chat {chat_id}: add the bot to the "
                f"group, then set {setting} to the group's id",
            )
        )
        return
    except NetworkError as exc:
        findings.problems.append(
            Problem(setting, f"chat {chat_id} could not be checked ({type(exc).__name__}): retry")
        )
        return
    except TelegramError as exc:
        findings.problems.append(Problem(setting, f"chat {chat_id}: {exc.message}"))
        return
    refusal = cannot_post(chat, member)
    if refusal is not None:
        findings.problems.append(Problem(setting, f"{chat.title or chat_id}: {refusal[1]}"))
    else:
        findings.checked.append(f"{setting} {chat.title or chat_id}")
