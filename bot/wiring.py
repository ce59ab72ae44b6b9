"""What the settings make for every process, the bot's or a command's: the protocols it may enrol
into, and the unit's settings the services read.

Apart from bot.telegram so that a command such as ``audit`` or ``staff list`` does not load
Telegram's stack to build them (it was half of each command's two to three seconds).
"""

from __future__ import annotations

from datetime import timedelta

from bot.config import Settings
from bot.domain.parsing.vocabulary import parser_languages
from bot.domain.protocol import Protocol
from bot.errors import ProtocolError
from bot.i18n import available_languages
from bot.protocols import ProtocolRegistry, default_schedules_dir
from bot.services.context import UnitSettings

#: The fake server's bot: the sandbox's enrolment links open it (bot.sandbox.fake_api).
SANDBOX_BOT_USERNAME = "cryo_followup_bot"


def unit_settings(settings: Settings, bot_username: str) -> UnitSettings:
    """The part of the settings services need."""
    return UnitSettings(
        unit_name=settings.unit_name,
        unit_name_by_language=dict(settings.unit_name_by_language),
        unit_phone=settings.unit_phone,
        oncall_phone=settings.oncall_phone,
        staff_chat_id=settings.staff_chat_id,
        oncall_chat_id=settings.oncall_chat_id,
        staff_user_ids=settings.staff_user_ids,
        time_zone=settings.timezone,
        token_ttl=timedelta(days=settings.token_ttl_days),
        reescalate_after=timedelta(minutes=settings.reescalate_after_minutes),
        digest_time=settings.digest_time,
        bot_username=bot_username,
        media_dir=str(settings.media_dir),
        media_max_bytes=settings.media_max_bytes,
        staff_language=settings.staff_language,
    )


def load_registry(settings: Settings, *, require_approval: bool) -> ProtocolRegistry:
    """Load SCHEDULES_DIR, keep ENABLED_PROTOCOLS enrollable; refuse an unapproved enabled
    protocol unless explicitly allowed (one left out of ENABLED_PROTOCOLS blocks nothing)."""
    registry = ProtocolRegistry.from_dir(settings.schedules_dir or default_schedules_dir())
    registry.enable_only(settings.enabled_protocols)
    for protocol in registry.enrollable():
        missing = languages_missing(protocol)
        if missing:
            raise ProtocolError(f"{protocol.id} v{protocol.version}", missing)
    if require_approval and not settings.allow_unapproved_protocol:
        for protocol in registry.enrollable():
            if not protocol.approved:
                raise ProtocolError(f"{protocol.id} v{protocol.version}", [unapproved(protocol)])
    return registry


def languages_missing(protocol: Protocol) -> list[tuple[str, str]]:
    """A protocol language without its files would be spoken without being understood (its free
    text read with no negation: "sin fiebre" as a fever) or not spoken at all."""
    catalogs, parsed = set(available_languages()), set(parser_languages())
    problems = []
    for language in protocol.languages:
        absent = [
            name
            for name, present in (
                ("LC_MESSAGES/messages.po", language in catalogs),
                ("parsing.yaml", language in parsed),
            )
            if not present
        ]
        if absent:
            problems.append(
                (
                    "languages",
                    f"{language}: no {' and no '.join(absent)} in {language}/ of LOCALES_DIR or "
                    "the shipped bot/locales",
                )
            )
    return problems


def unapproved(protocol: Protocol) -> tuple[str, str]:
    """The problem of an enabled protocol no physician has approved yet, with both fixes."""
    return (
        "approved_by",
        "not approved by a physician: fill approved_by and approved_on, leave "
        f"{protocol.id} out of ENABLED_PROTOCOLS, or set ALLOW_UNAPPROVED_PROTOCOL=true for testing",
    )
