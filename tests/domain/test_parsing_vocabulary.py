"""The parser's per-language vocabulary files (bot/locales/<lang>/parsing.yaml) and their loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain.parsing.vocabulary import (
    FILE_NAME,
    LOCALES_DIR,
    VocabularyError,
    load_language,
    load_vocabulary,
    parsing_languages,
)


def raw(language: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((LOCALES_DIR / language / FILE_NAME).read_text("utf-8"))
    return loaded


def key_paths(node: object, prefix: str = "") -> set[str]:
    """Every mapping key of a YAML tree, as dotted paths (list items are checked by the loader)."""
    if isinstance(node, dict) and prefix.endswith(("small_numbers", "irregular")):
        return set()  # word -> value tables: their keys are words, not keys of the format
    if isinstance(node, dict):
        paths: set[str] = set()
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths |= {path} | key_paths(value, path)
        return paths
    return set()


def write(directory: Path, language: str, content: dict[str, Any]) -> Path:
    path = directory / language / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    return path


def test_french_and_english_are_shipped() -> None:
    assert {"fr", "en"} <= set(parsing_languages())
    assert len(load_vocabulary()) == len(parsing_languages())


def test_every_shipped_language_has_the_same_keys() -> None:
    languages = parsing_languages()
    reference = key_paths(raw(languages[0]))
    assert "yes_no.yes_words" in reference
    for language in languages[1:]:
        assert key_paths(raw(language)) == reference, language


def test_a_missing_key_is_refused_naming_the_file(tmp_path: Path) -> None:
    content = raw("fr")
    del content["yes_no"]["no_words"]
    path = write(tmp_path, "xx", content)
    with pytest.raises(VocabularyError) as refused:
        load_language("xx", tmp_path)
    assert str(path) in str(refused.value)
    assert "yes_no.no_words" in str(refused.value)
    assert "Field required" in str(refused.value)


def test_a_misspelt_key_is_refused_naming_the_file(tmp_path: Path) -> None:
    content = raw("en")
    content["hedges"]["locale"] = content["hedges"].pop("local")
    path = write(tmp_path, "xx", content)
    with pytest.raises(VocabularyError) as refused:
        load_vocabulary(tmp_path)
    message = str(refused.value)
    assert str(path) in message
    assert "hedges.locale" in message
    assert "hedges.local\n" in message  # and the real key is reported missing


@pytest.mark.parametrize(
    ("section", "key", "value", "reason"),
    [
        ("yes_no", "no_words", [False], "valid string"),  # an unquoted `no` in YAML
        ("negation", "reassuring", ["très bien"], "lower-case ASCII"),
        ("red_flags", "fillers", ["Tout"], "lower-case ASCII"),
        ("numbers", "units_after", ["(jours)"], "must not capture"),
        ("choice", "dont_know", ["sais pas("], "not a valid regular expression"),
        ("negative_question", "words", ["Jamais"], "lower-case ASCII"),
    ],
)
def test_a_word_the_parser_could_never_match_is_refused(
    tmp_path: Path, section: str, key: str, value: list[object], reason: str
) -> None:
    content = raw("fr")
    content[section][key] = value
    path = write(tmp_path, "xx", content)
    with pytest.raises(VocabularyError, match=reason) as refused:
        load_language("xx", tmp_path)
    assert str(path) in str(refused.value)


def test_a_file_that_is_not_a_mapping_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "xx" / FILE_NAME
    path.parent.mkdir()
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="mapping") as refused:
        load_language("xx", tmp_path)
    assert str(path) in str(refused.value)


def test_a_language_is_added_with_a_file_only(tmp_path: Path) -> None:
    for language in ("fr", "en"):
        write(tmp_path, language, raw(language))
    spanish = raw("en") | {"reading_order": 3, "text2num": "es"}
    spanish["yes_no"] = spanish["yes_no"] | {"yes_words": ["si", "claro"]}
    write(tmp_path, "es", spanish)
    assert parsing_languages(tmp_path) == ("en", "es", "fr")
    loaded = load_vocabulary(tmp_path)
    assert [words.text2num for words in loaded] == ["fr", "en", "es"]  # in reading order
    assert loaded[2].yes_no.yes_words == ("si", "claro")


def test_two_languages_in_one_reading_place_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "fr", raw("fr"))
    write(tmp_path, "xx", raw("fr"))
    with pytest.raises(VocabularyError, match="reading_order 1 is already taken"):
        load_vocabulary(tmp_path)


def test_a_folder_without_vocabulary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match=r"no \*/parsing\.yaml"):
        load_vocabulary(tmp_path)


def test_the_shipped_vocabulary_is_read_once() -> None:
    assert load_vocabulary() is load_vocabulary()


def test_the_negative_question_words_are_required_in_every_language(tmp_path: Path) -> None:
    """``protocol check`` reads them to refuse a yes/no question phrased in the negative."""
    content = raw("en")
    del content["negative_question"]["double_readings"]
    path = write(tmp_path, "xx", content)
    with pytest.raises(VocabularyError) as refused:
        load_language("xx", tmp_path)
    assert str(path) in str(refused.value)
    assert "negative_question.double_readings" in str(refused.value)
