"""The parser's words, one data file per language: ``bot/locales/<lang>/parsing.yaml``.

Negators, hedges, yes/no words, number and unit words, red-flag grammar words, word endings...
are data, so a language is added with one file (every key is required: a missing or misspelt
key fails at load, naming the file), in the shipped folder or in ``LOCALES_DIR``
(:mod:`bot.languages`). The parser reads every language at once, since patients mix them ("ok",
"non merci"), so its modules take the union of a key over all languages (:func:`every`), read
once at import. Words are written as the parser sees the text: lower-case ASCII, no accents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from bot.languages import SHIPPED_DIR, parser_dirs

#: Where the shipped languages live, beside the interface catalogs.
LOCALES_DIR = SHIPPED_DIR
FILE_NAME = "parsing.yaml"

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class VocabularyError(ValueError):
    """A language's vocabulary file is missing, unreadable or not of the expected shape."""


def _plain_ascii(text: str) -> str:
    if not text.isascii() or text != text.lower():
        raise ValueError(f"{text!r} must be lower-case ASCII, as the parser sees the text")
    return text


def _regex(text: str) -> str:
    if not text.isascii():
        raise ValueError(f"{text!r} must be ASCII, as the parser sees the text")
    try:
        re.compile(text)
    except re.error as error:
        raise ValueError(f"{text!r} is not a valid regular expression: {error}") from None
    return text


def _alternative(text: str) -> str:
    if re.compile(text).groups:
        raise ValueError(f"{text!r} must not capture: write (?:...) for a group")
    return text


#: A word or phrase, as the parser sees it.
Word = Annotated[StrictStr, AfterValidator(_plain_ascii)]
#: A regular expression.
Pattern = Annotated[StrictStr, AfterValidator(_regex)]
#: A regex alternative, joined with others (most are plain words; ``s?`` is an optional plural).
Alternative = Annotated[Pattern, AfterValidator(_alternative)]
Words = tuple[Word, ...]
Alternatives = tuple[Alternative, ...]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Contraction(_Section):
    pattern: Pattern
    replacement: StrictStr


class Ending(_Section):
    """A word ending dropped from words at least ``min_length`` long."""

    ending: Word
    min_length: int = Field(ge=2, strict=True)


class Stems(_Section):
    once: tuple[Ending, ...]
    repeated: tuple[Ending, ...]


class LemmaEnding(Ending):
    stage: int = Field(ge=1, strict=True)
    undouble: StrictBool = False
    unless: Word | None = None


class Clauses(_Section):
    conjunctions: Words
    joiners: Words


class Numbers(_Section):
    small_numbers: dict[Word, StrictInt]
    one_after: Alternatives
    one_before: Alternatives
    units_after: Alternatives
    units_attached: Alternatives
    units_before: Alternatives
    comparators_before: Alternatives
    minus_before: Alternatives
    scale_after_score: Alternatives
    scale_before_number: Alternatives
    range_links: Alternatives
    between_links: Alternatives
    between_before: Alternatives
    date_before: Alternatives


class Temperature(_Section):
    degree_words: Alternatives
    half: Alternatives
    score_after: Alternatives
    fever_context: Alternatives
    number_words: Alternatives


class YesNo(_Section):
    yes_words: Words
    no_words: Words
    single_yes: Words
    single_no: Words
    yes_first_word: Words
    yes_phrases: Words
    no_phrases: Words
    unsure_phrases: Words
    not_typos: Words
    persisting: Words


class Choice(_Section):
    negators: Words
    comparatives: Words
    dont_know: Alternatives


class NotNegating(_Section):
    words: tuple[Word, Word]
    negating_before: Words


class Negation(_Section):
    pre_negators: Words
    post_negators: Words
    post_doubt: Words
    improving: Words
    not_improving: Words
    reassuring: Words
    after_ne: Words
    ne: Words
    ne_closers: Words
    answer_words: Words
    subjects: Words
    not_negating: tuple[NotNegating, ...]


class Hedges(_Section):
    local: Words
    sentence: Words


class CanBarely(_Section):
    barely: Words
    can: Words
    cannot: Word


class Lemmas(_Section):
    endings: tuple[LemmaEnding, ...]
    kept_doubles: Words
    irregular: dict[Word, Word]
    keep: Words
    can_barely: CanBarely


class RedFlags(_Section):
    topic_words: Words
    degree_words: Words
    skippable: Words
    fever_words: Words
    fillers: Words
    not_keys: Words
    ordered: Words


class Questions(_Section):
    skip: Words
    polite_skip: Words
    nothing_to_add: Words
    checklist_none: Words
    checklist_filler: Words


class NegativeQuestion(_Section):
    """Read by ``protocol check`` (bot/domain/wording.py), not by the parser: words that make
    a yes/no question of the protocol file read in the negative, or both ways."""

    words: Words
    phrases: Words
    double_readings: Words


class LanguageWords(_Section):
    """One ``parsing.yaml``: what each key means is said in the shipped files."""

    reading_order: StrictInt
    text2num: StrictStr | None
    contractions: tuple[Contraction, ...]
    stems: Stems
    clauses: Clauses
    numbers: Numbers
    temperature: Temperature
    yes_no: YesNo
    choice: Choice
    negation: Negation
    hedges: Hedges
    lemmas: Lemmas
    red_flags: RedFlags
    questions: Questions
    negative_question: NegativeQuestion


def parsing_languages(directory: Path = LOCALES_DIR) -> tuple[str, ...]:
    """The languages with a vocabulary file in ``directory`` (one sub-folder per language)."""
    return tuple(sorted(path.parent.name for path in directory.glob(f"*/{FILE_NAME}")))


def load_language(language: str, directory: Path = LOCALES_DIR) -> LanguageWords:
    """The vocabulary of one language; any problem is a :class:`VocabularyError` naming the file."""
    path = directory / language / FILE_NAME
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise VocabularyError(f"{path}: cannot be read: {error}") from None
    if not isinstance(raw, dict):
        raise VocabularyError(f"{path}: must be a mapping of vocabulary sections")
    try:
        return LanguageWords.model_validate(raw)
    except ValidationError as error:
        raise VocabularyError(f"{path}: {error}") from None


def load_vocabulary(directory: Path = LOCALES_DIR) -> tuple[LanguageWords, ...]:
    """Every language of ``directory``, in ``reading_order`` (read once per directory).

    The order matters only where languages are read in turn (text2num converts number words
    language after language); two languages may not claim the same place.
    """
    return load_vocabularies((directory,))


@cache
def load_vocabularies(directories: Sequence[Path]) -> tuple[LanguageWords, ...]:
    """Every language of ``directories`` (a language's file in an earlier one wins), in
    ``reading_order``; read once per tuple of directories."""
    found: dict[str, Path] = {}
    for directory in directories:
        for language in parsing_languages(directory):
            found.setdefault(language, directory / language / FILE_NAME)
    if not found:
        raise VocabularyError(f"{', '.join(map(str, directories))}: no */{FILE_NAME} file")
    loaded = {
        language: load_language(language, path.parents[1]) for language, path in found.items()
    }
    by_order: dict[int, str] = {}
    for language, words in loaded.items():
        other = by_order.setdefault(words.reading_order, language)
        if other != language:
            raise VocabularyError(
                f"{found[language]}: reading_order {words.reading_order} "
                f"is already taken by {found[other]}"
            )
    return tuple(loaded[by_order[order]] for order in sorted(by_order))


def parser_languages() -> tuple[str, ...]:
    """The languages the parser reads (their files are :func:`parser_vocabulary`)."""
    return tuple(sorted({lang for folder in parser_dirs() for lang in parsing_languages(folder)}))


def parser_vocabulary() -> tuple[LanguageWords, ...]:
    """The languages the parser reads: ``LOCALES_DIR`` (when set) and the shipped ones."""
    return load_vocabularies(parser_dirs())


def every(pick: Callable[[LanguageWords], Iterable[T]]) -> tuple[T, ...]:
    """One key of every language, concatenated in reading order."""
    return tuple(item for words in parser_vocabulary() for item in pick(words))


def every_mapping(pick: Callable[[LanguageWords], Mapping[K, V]]) -> dict[K, V]:
    """One mapping key of every language, merged; two languages may not disagree."""
    merged: dict[K, V] = {}
    for words in parser_vocabulary():
        for key, value in pick(words).items():
            if merged.setdefault(key, value) != value:
                raise VocabularyError(
                    f"{key!r} means {merged[key]!r} in one language, {value!r} in another"
                )
    return merged


def alternatives(
    pick: Callable[[LanguageWords], Iterable[str]], *, before: str = "", after: str = ""
) -> str:
    """Regex alternatives of every language as one group, each between ``before`` and ``after``.

    With no alternative at all, a group that never matches (an empty one would match anywhere).
    """
    parts = [
        f"{before}(?:{pattern}){after}" if "|" in pattern else f"{before}{pattern}{after}"
        for pattern in every(pick)
    ]
    return "(?:" + "|".join(parts) + ")" if parts else "(?!)"
