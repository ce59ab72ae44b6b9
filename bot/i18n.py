"""Interface texts from Babel/gettext catalogs (``bot/locales/<lang>/LC_MESSAGES/messages.po``).

Clinical wording lives in the protocol file; the bot's own texts (commands, confirmations, staff
views) live here. The ``.po`` files are compiled in memory at start (a compiled ``messages.mo``
is read as it is), so adding a language is a new catalog and that language's entries in the
protocol file: no code, no build step. Languages are looked up in ``LOCALES_DIR`` first, then in
the shipped folder (:mod:`bot.languages`).

Dates and times are written with Babel in the language's CLDR conventions: month and day
names, word order, the words between them. ``<lang>/dates.yaml`` may give the CLDR patterns
(French and English do, so they read "mardi 1 décembre à 18:00", "Tuesday 1 December at
18:00"); a language without one gets patterns derived from its CLDR data
(Spanish: "martes, 1 de diciembre, 18:00").
"""

from __future__ import annotations

import gettext
import io
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, match_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot import languages

LOCALES_DIR = languages.SHIPPED_DIR
DEFAULT_LANGUAGE = "en"
CATALOG = "LC_MESSAGES/messages"
DATES_FILE = "dates.yaml"

#: The ways :func:`format_local` writes a moment.
DATE_PATTERNS = ("full", "short", "time", "day")
#: CLDR skeletons of the date and time parts a pattern is derived from (no dates.yaml): a
#: skeleton names fields and widths, CLDR says how the language orders and joins them.
_SKELETONS = {"day": "MMMMEEEEd", "short_day": "MMdd", "time": "Hm"}


def _directories() -> tuple[Path, ...]:
    return (*languages.extra_dirs(), LOCALES_DIR)


def _catalog_path(language: str) -> Path | None:
    for directory in _directories():
        for suffix in (".po", ".mo"):
            path = directory / language / f"{CATALOG}{suffix}"
            if path.exists():
                return path
    return None


def available_languages() -> list[str]:
    """Languages that have a catalog."""
    found = {
        path.parents[1].name
        for directory in _directories()
        if directory.is_dir()
        for path in directory.glob(f"*/{CATALOG}.[pm]o")
    }
    return sorted(found)


def use_locales_dir(directory: Path | None) -> None:
    """LOCALES_DIR: languages read from ``directory`` too (catalogs, parsing, dates)."""
    languages.use_locales_dir(directory)
    _translations.cache_clear()
    _date_patterns.cache_clear()


@cache
def _translations(language: str) -> gettext.NullTranslations:
    path = _catalog_path(language)
    if path is None:
        return gettext.NullTranslations()
    if path.suffix == ".mo":
        with path.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def normalise_language(code: str | None, supported: tuple[str, ...] | list[str]) -> str:
    """Map Telegram's ``language_code`` (e.g. ``fr-FR``) to a supported language."""
    if code:
        base = code.split("-")[0].split("_")[0].lower()
        if base in supported:
            return base
    return "fr" if "fr" in supported else supported[0]


def t(language: str, message: str, /, **values: object) -> str:
    """Translate ``message`` (an English msgid) and fill ``{placeholders}``."""
    text = _translations(language).gettext(message)
    return text.format(**values) if values else text


def tn(language: str, singular: str, plural: str, count: int, /, **values: object) -> str:
    """Translate with a plural form chosen by ``count`` (``{count}`` is filled in)."""
    text = _translations(language).ngettext(singular, plural, count)
    return text.format(count=count, **values)


def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LANGUAGE)


# A CLDR pattern: quoted literals ('de', '' for a quote) or runs of one field letter.
_PATTERN_PART = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^'A-Za-z]+")
# Fields whose width says how they are written (EEEE "mardi", E "mar."; MMMM "décembre"), by family.
_TEXT_FIELDS = {"E": "E", "c": "E", "e": "E", "M": "M", "L": "M"}


def _skeleton_pattern(locale: Locale, skeleton: str) -> str:
    """The language's pattern for ``skeleton``, with weekday and month widths as asked (CLDR
    keeps one pattern per field set: "E d MMMM" also serves "EEEE d MMMM")."""
    match = match_skeleton(skeleton, locale.datetime_skeletons)
    if match is None:  # every CLDR locale has these skeletons; a partial one falls back
        return skeleton
    pattern = str(locale.datetime_skeletons[match].pattern)
    widths = {
        _TEXT_FIELDS[run[0]]: len(run)
        for run, _letter in re.findall(r"((.)\2*)", skeleton)
        if run[0] in _TEXT_FIELDS
    }
    parts = []
    for part in _PATTERN_PART.finditer(pattern):
        text = part.group(0)
        family = _TEXT_FIELDS.get(text[0]) if part.group(1) else None
        # Weekdays are always words; a month only from MMM on ("MM" stays a number).
        if family in widths and (family == "E" or len(text) >= 3):
            text = text[0] * widths[family]
        parts.append(text)
    return "".join(parts)


def cldr_patterns(language: str) -> dict[str, str]:
    """The patterns of :data:`DATE_PATTERNS` derived from the language's CLDR data."""
    locale = _locale(language)
    day = _skeleton_pattern(locale, _SKELETONS["day"])
    time = _skeleton_pattern(locale, _SKELETONS["time"])
    short_day = _skeleton_pattern(locale, _SKELETONS["short_day"])

    def joined(style: str, date_part: str) -> str:
        return str(locale.datetime_formats[style]).replace("{1}", date_part).replace("{0}", time)

    return {
        "full": joined("long", day),
        "short": joined("short", short_day),
        "time": time,
        "day": day,
    }


@cache
def _date_patterns(language: str) -> dict[str, str]:
    patterns = cldr_patterns(language)
    for directory in _directories():
        path = directory / language / DATES_FILE
        if path.exists():
            patterns |= _read_dates_file(path)
            break
    return patterns


def _read_dates_file(path: Path) -> dict[str, str]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot be read: {error}") from None
    if not isinstance(loaded, dict) or not all(
        key in DATE_PATTERNS and isinstance(value, str) for key, value in loaded.items()
    ):
        raise ValueError(
            f"{path}: must map some of {', '.join(DATE_PATTERNS)} to CLDR date patterns"
        )
    return {str(key): str(value) for key, value in loaded.items()}


def format_local(moment: datetime, language: str, time_zone: str, pattern: str = "full") -> str:
    """A date and time in the patient's zone and language ('mardi 1 décembre à 10:00')."""
    local = moment.astimezone(ZoneInfo(time_zone))
    return format_datetime(local, _date_patterns(language)[pattern], locale=_locale(language))
