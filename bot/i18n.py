"""Interface texts from Babel/gettext catalogs (``bot/locales/<lang>/LC_MESSAGES/messages.po``).

Clinical wording lives in the protocol file; the bot's own texts (commands, confirmations, staff
views) live here. The ``.po`` files are compiled in memory at start, so adding a language is a
new catalog and that language's entries in the protocol file: no code, no build step.
"""

from __future__ import annotations

import gettext
import io
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"


def available_languages() -> list[str]:
    """Languages that have a catalog."""
    return sorted(p.name for p in LOCALES_DIR.iterdir() if (p / "LC_MESSAGES/messages.po").exists())


@cache
def _translations(language: str) -> gettext.NullTranslations:
    path = LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return gettext.NullTranslations()
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


def format_local(moment: datetime, language: str, time_zone: str, pattern: str = "full") -> str:
    """A date and time in the patient's zone and language ('mardi 1 décembre à 10:00')."""
    local = moment.astimezone(ZoneInfo(time_zone))
    formats = {
        "full": {"fr": "EEEE d MMMM 'à' HH:mm", "en": "EEEE d MMMM 'at' HH:mm"},
        "short": {"fr": "dd/MM HH:mm", "en": "dd/MM HH:mm"},
        "time": {"fr": "HH:mm", "en": "HH:mm"},
        "day": {"fr": "EEEE d MMMM", "en": "EEEE d MMMM"},
    }[pattern]
    return format_datetime(local, formats.get(language, formats["en"]), locale=language)
