"""Settings from the environment and ``.env`` (pydantic-settings).

Built once in the CLI and passed down, never a module global, so tests build their own. A missing
or malformed value stops the program at start with one line naming the variable
(:func:`load_settings` turns pydantic's report into a :class:`~bot.errors.ConfigError`).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import DirectoryPath, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

_TOKEN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")

#: What each variable expects, for the one-line error (kept next to the fields it explains).
EXPECTED = {
    "TELEGRAM_BOT_TOKEN": "the token BotFather gave, like 123456789:AA... (or empty for the sandbox)",
    "TELEGRAM_API_BASE_URL": "an http(s) URL ending in /bot, like https://api.telegram.org/bot",
    "BOT_USERNAME": "the bot's @username without the @ (letters, digits, _; ends in bot)",
    "DATABASE_URL": "an SQLAlchemy URL: sqlite+aiosqlite:///file.db or postgresql+asyncpg://...",
    "DATABASE_SCHEMA": "a PostgreSQL schema name (letters, digits, _), or empty",
    "STAFF_CHAT_ID": "the staff group's chat id, a negative integer like -1001234567890",
    "ONCALL_CHAT_ID": "the on-call chat id (integer), or empty",
    "STAFF_USER_IDS": "comma-separated Telegram user ids (integers), like 1111,2222",
    "TIMEZONE": "an IANA time zone name, like Europe/Paris",
    "UNIT_PHONE": "the unit's phone number as patients should dial it",
    "ONCALL_PHONE": "the out-of-hours phone number",
    "UNIT_NAME": "the unit's name as patients know it",
    "UNIT_NAME_BY_LANGUAGE": "a JSON object of language code to unit name, like "
    '{"en": "Interventional Radiology"}, or empty',
    "LOG_FORMAT": "console or json",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "WEBHOOK_URL": "the public https URL Telegram should post updates to, or empty for polling",
    "WEBHOOK_SECRET": "1-256 characters of A-Z a-z 0-9 _ -",
    "WEBHOOK_LISTEN": "host:port to listen on for the webhook, like 0.0.0.0:8443",
    "RECEIVE_UPDATES": "true or false",
    "ALLOW_UNAPPROVED_PROTOCOL": "true or false",
    "ENABLED_PROTOCOLS": "comma-separated protocol ids (the id: of each file), or empty for all",
    "TELEGRAM_PROXY_URL": "an http:// proxy URL like http://proxy.example:3128 (socks is not "
    "supported: use an HTTP proxy), or empty",
    "SCHEDULES_DIR": "a folder holding the protocol files (*.yaml)",
    "TOKEN_TTL_DAYS": "a whole number of days (1-90)",
    "REESCALATE_AFTER_MINUTES": "a whole number of minutes (1-240)",
    "DIGEST_TIME": "a time as HH:MM",
    "METRICS_PORT": "a TCP port number, or 0 to disable",
    "MEDIA_DIR": "a folder for local copies of patients' photos",
    "MEDIA_MAX_BYTES": "a size in bytes",
    "STAFF_LANGUAGE": "fr or en (the language of everything the unit's staff read)",
    "CLOCK_SPEED": "simulated seconds per real second, a number above 0 (1 = real time)",
    "CLOCK_START": "a local date and time in TIMEZONE, like 2026-12-01T09:00, or empty for now",
    "LOCALES_DIR": "an existing folder of extra languages (<lang>/LC_MESSAGES/messages.po, "
    "<lang>/parsing.yaml), or empty",
}

#: Telegram's own Bot API: a rehearsal clock is refused there (real patients, real time).
TELEGRAM_API_HOST = "api.telegram.org"


class Settings(BaseSettings):
    """Every setting of the bot; ``.env.example`` documents each one."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: str = ""
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    bot_username: str | None = None
    database_url: str = "sqlite+aiosqlite:///cryo-followup.db"
    database_schema: str | None = None
    staff_chat_id: int | None = None
    oncall_chat_id: int | None = None
    staff_user_ids: Annotated[tuple[int, ...], NoDecode] = ()
    timezone: str = "Europe/Paris"
    unit_name: str = "Radiologie interventionnelle"
    #: The unit's name in the languages where it differs from ``unit_name``.
    unit_name_by_language: Annotated[dict[str, str], NoDecode] = {}
    unit_phone: str = "01 23 45 67 89"
    oncall_phone: str = "01 98 76 54 32"
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_listen: str = "0.0.0.0:8443"
    receive_updates: bool = True
    allow_unapproved_protocol: bool = False
    enabled_protocols: Annotated[tuple[str, ...], NoDecode] = ()
    telegram_proxy_url: str | None = None
    schedules_dir: Path | None = None
    token_ttl_days: int = Field(default=7, ge=1, le=90)
    reescalate_after_minutes: int = Field(default=15, ge=1, le=240)
    digest_time: str = "08:30"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    media_dir: Path = Path("media")
    media_max_bytes: int = Field(default=5_000_000, ge=0)
    staff_language: Literal["fr", "en"] = "fr"
    clock_speed: float = Field(default=1.0, gt=0)
    clock_start: datetime | None = None
    locales_dir: DirectoryPath | None = None

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not _TOKEN.match(value):
            raise ValueError("malformed")
        return value

    @field_validator("telegram_api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^\s/]+", value) or not value.endswith("/bot"):
            raise ValueError("malformed")
        return value

    @field_validator("bot_username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lstrip("@")
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]{3,31}$", value):
            raise ValueError("malformed")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        elif value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            value = "sqlite+aiosqlite://" + value.split("://", 1)[1]
        if not (
            value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")
        ):
            raise ValueError("malformed")
        return value

    @field_validator("database_schema", mode="before")
    @classmethod
    def _schema(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
            if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value):
                raise ValueError("malformed")
        return value

    @field_validator("staff_user_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(re.fullmatch(r"\d+", part) for part in parts):
                raise ValueError("malformed")
            return tuple(int(part) for part in parts)
        return value

    @field_validator("enabled_protocols", mode="before")
    @classmethod
    def _protocol_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = tuple(part.strip() for part in value.split(",") if part.strip())
            if not all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", part) for part in parts):
                raise ValueError("malformed")
            return parts
        return value

    @field_validator("telegram_proxy_url", mode="before")
    @classmethod
    def _proxy(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
            if value is not None and not re.fullmatch(r"https?://[^\s/]+/?", value):
                raise ValueError("malformed")
        return value

    @field_validator("staff_chat_id", "oncall_chat_id", mode="before")
    @classmethod
    def _empty_chat(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "webhook_url",
        "webhook_secret",
        "schedules_dir",
        "bot_username",
        "clock_start",
        "locales_dir",
        mode="before",
    )
    @classmethod
    def _empty_to_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("staff_language", mode="before")
    @classmethod
    def _language_code(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("malformed")
        return value

    @field_validator("unit_name_by_language", mode="before")
    @classmethod
    def _json_mapping(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("malformed") from None
        return value

    @field_validator("unit_name_by_language")
    @classmethod
    def _names_by_language(cls, value: dict[str, str]) -> dict[str, str]:
        for language, name in value.items():
            if not re.fullmatch(r"[a-z]{2,3}", language) or not name.strip():
                raise ValueError("malformed")
        return {language: name.strip() for language, name in value.items()}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone") from None
        return value

    @field_validator("digest_time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("malformed")
        return value

    @field_validator("clock_speed")
    @classmethod
    def _speed(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("not finite")
        return value

    @field_validator("clock_start")
    @classmethod
    def _local_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        """A naive time is local to TIMEZONE (validated before: fields validate in order)."""
        if value is None or value.tzinfo is not None:
            return value
        zone = info.data.get("timezone")
        if zone is None:  # TIMEZONE itself is invalid: that error is reported
            return value
        return value.replace(tzinfo=ZoneInfo(zone))

    @property
    def rehearsal(self) -> bool:
        """A simulated clock (CLOCK_SPEED other than 1, or CLOCK_START): never real patients."""
        return self.clock_speed != 1 or self.clock_start is not None

    @property
    def talks_to_telegram(self) -> bool:
        """TELEGRAM_API_BASE_URL is Telegram's own Bot API."""
        host = (urlsplit(self.telegram_api_base_url).hostname or "").lower()
        return host == TELEGRAM_API_HOST or host.endswith("." + TELEGRAM_API_HOST)

    @property
    def sandbox(self) -> bool:
        """No token: run against the built-in fake Telegram server."""
        return not self.telegram_bot_token


def load_settings(env_file: str | None = ".env", **overrides: object) -> Settings:
    """Read settings, turning any validation problem into one clear :class:`ConfigError` line."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = field.upper()
        expected = EXPECTED.get(variable, error["msg"])
        raise ConfigError(f"{variable} is invalid: expected {expected}") from None
