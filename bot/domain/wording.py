"""Yes/no questions a patient cannot misread: a "yes" always means the problem is present.

A question phrased in the negative ("Is the bleeding not stopping?") gets "no, it won't stop":
the patient answers the words, not the grammar, and the bot saves a "no" (docs/clinical.md §2).
``protocol check`` refuses such a question in any language of the file. The words that make a
question negative, or readable both ways ("continue-t-il ?"), are data: the
``negative_question`` section of ``bot/locales/<lang>/parsing.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from bot.domain.parsing.normalise import to_ascii
from bot.domain.parsing.vocabulary import LanguageWords, load_language, parsing_languages
from bot.domain.protocol import LocalizedText, Protocol, format_location
from bot.languages import SHIPPED_DIR, extra_dirs

_WORD = re.compile(r"[a-z0-9]+")


@cache
def _vocabulary(language: str) -> LanguageWords | None:
    """The language's vocabulary file (LOCALES_DIR first, then the shipped one), None when it
    has none."""
    for directory in (*extra_dirs(), SHIPPED_DIR):
        if language in parsing_languages(directory):
            return load_language(language, directory)
    return None


def _words(text: str, vocabulary: LanguageWords) -> list[str]:
    """The text's words as the parser sees them, with the language's contractions expanded."""
    text = to_ascii(text)
    for contraction in vocabulary.contractions:
        text = re.sub(contraction.pattern, contraction.replacement, text)
    return _WORD.findall(text)


def _contains(words: list[str], phrase: str) -> bool:
    wanted = _WORD.findall(phrase)
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


def negative_reading(text: str, language: str) -> str | None:
    """Why a yes/no question in ``language`` can be misread (None when it reads positively).

    Raises KeyError when the language has no vocabulary file to check it with.
    """
    vocabulary = _vocabulary(language)
    if vocabulary is None:
        raise KeyError(language)
    section = vocabulary.negative_question
    words = _words(text, vocabulary)
    negative = [w for w in section.words if w in words]
    negative += [p for p in section.phrases if _contains(words, p)]
    if negative:
        return f"is phrased in the negative ({', '.join(map(repr, negative))})"
    both_ways = [w for w in section.double_readings if w in words]
    if both_ways:
        return f"reads both ways ({', '.join(map(repr, both_ways))})"
    return None


def _yes_no_texts(protocol: Protocol) -> Iterator[tuple[tuple[int | str, ...], str, LocalizedText]]:
    """Every text asked as a yes/no: yes_no questions, and each red flag's own question (asked
    when free text mentions the flag doubtfully)."""
    for index, question in enumerate(protocol.questions):
        if question.type == "yes_no":
            yield ("questions", index, "text"), f"question {question.id!r}", question.text
    for flag_id, flag in protocol.red_flags.items():
        yield ("red_flags", flag_id, "question"), f"red flag {flag_id}'s question", flag.question


def check_wording(protocol: Protocol) -> list[tuple[str, str]]:
    """Every yes/no question a patient could misread, as (path, message); empty when none."""
    problems: list[tuple[str, str]] = []
    for path, name, text in _yes_no_texts(protocol):
        for language, wording in text.root.items():
            where = format_location((*path, language))
            try:
                why = negative_reading(wording, language)
            except KeyError:
                problems.append(
                    (
                        where,
                        f"no {language}/parsing.yaml (LOCALES_DIR or bot/locales) to check "
                        f"{name} with",
                    )
                )
                continue
            if why:
                problems.append(
                    (
                        where,
                        f"{name} ({language}) {why}: a patient answers the words, not the "
                        "grammar; ask it so that yes means the problem is present",
                    )
                )
    return problems
