"""Conventions turned into tests (datasette's habit): settings documented, texts translated,
layers respected."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from bot.config import Settings
from bot.i18n import _translations, available_languages

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set()
    assert documented - fields == set()


def _source_messages() -> set[str | tuple[str, str]]:
    """Singular msgids, and (singular, plural) pairs for ``tn`` (gettext keys plurals by the
    singular, so the plural form is looked up with ngettext)."""
    keywords = {"t": (2,), "tn": (2, 3)}
    messages: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "bot"), keywords=keywords, comment_tags=()
    ):
        if isinstance(message, tuple) and len(message) == 2 and all(message):
            messages.add((message[0], message[1]))
        elif isinstance(message, str) and message:
            messages.add(message)
    return messages


def test_every_interface_text_has_a_french_translation() -> None:
    french = _translations("fr")
    missing = sorted(
        str(m)
        for m in _source_messages()
        if (
            french.ngettext(m[0], m[1], 1) == m[0] or french.ngettext(m[0], m[1], 2) == m[1]
            if isinstance(m, tuple)
            else french.gettext(m) == m
        )
    )
    assert missing == []


def test_catalogs_exist_for_both_languages() -> None:
    assert {"fr", "en"} <= set(available_languages())


def test_no_domain_or_service_module_imports_telegram() -> None:
    for layer in ("domain", "db", "services"):
        for path in (ROOT / "bot" / layer).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*(from|import) telegram\b", text, re.MULTILINE), path
