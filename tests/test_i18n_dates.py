"""Dates in each language's words and order, with Babel: per-language data files, or the
language's CLDR data when it has none (no language is named in code)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import i18n

MOMENT = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # Tuesday 1 December, 18:00 in Paris


def written(language: str) -> list[str]:
    return [
        i18n.format_local(MOMENT, language, "Europe/Paris", pattern)
        for pattern in i18n.DATE_PATTERNS
    ]


@pytest.fixture
def locales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped languages the test may add files to."""
    folder = tmp_path / "locales"
    shutil.copytree(i18n.LOCALES_DIR, folder)
    monkeypatch.setattr(i18n, "LOCALES_DIR", folder)
    i18n._date_patterns.cache_clear()
    yield folder
    i18n._date_patterns.cache_clear()


def test_french_and_english_read_as_before() -> None:
    assert written("fr") == ["mardi 1 décembre à 18:00", "01/12 18:00", "18:00", "mardi 1 décembre"]
    assert written("en") == [
        "Tuesday 1 December at 18:00",
        "01/12 18:00",
        "18:00",
        "Tuesday 1 December",
    ]


def test_a_language_without_a_dates_file_follows_its_cldr_data() -> None:
    assert written("es") == [
        "martes, 1 de diciembre, 18:00",
        "1/12, 18:00",
        "18:00",
        "martes, 1 de diciembre",
    ]
    assert written("de")[0] == "Dienstag, 1. Dezember, 18:00"


def test_a_dates_file_gives_a_language_its_own_wording(locales: Path) -> None:
    (locales / "es").mkdir()
    (locales / "es" / i18n.DATES_FILE).write_text(
        "full: \"EEEE, d 'de' MMMM 'a las' H:mm\"\n", encoding="utf-8"
    )
    assert written("es")[:2] == ["martes, 1 de diciembre a las 18:00", "1/12, 18:00"]


def test_a_malformed_dates_file_is_refused_naming_it(locales: Path) -> None:
    path = locales / "fr" / i18n.DATES_FILE
    path.write_text("long: EEEE\n", encoding="utf-8")
    with pytest.raises(ValueError, match="full, short, time, day") as refused:
        written("fr")
    assert str(path) in str(refused.value)
