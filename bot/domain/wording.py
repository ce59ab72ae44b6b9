"""Yes/no questions a patient cannot misread: a "yes" always means the problem is present.

A question phrased in the negative ("Is the bleeding not stopping?") gets "no, it won't stop":
the patient answers the words, not the grammar, and the bot saves a "no" (docs/clinical.md §2).
``protocol check`` refuses such a question in any language of the file. The words that make a
question negative, or readable both ways ("continue-t-il ?"), are data: the
``negative_question`` section of ``bot/locales/<lang>/parsing.yaml``.

And safety advice that stays true: each keeps, word for word, a sentence saying the team was
alerted (:data:`TEAM_TOLD`, in each language's catalog), which the bot takes out when no team
chat can take the alert.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Final

from bot.domain.parsing.normalise import to_ascii
from bot.domain.parsing.vocabulary import LanguageWords, load_language, parsing_languages
from bot.domain.protocol import LocalizedText, Protocol, format_location
from bot.i18n import t
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


#: The sentences of a safety advice that tell the patient the team was alerted (English msgids,
#: translated in each language's catalog). When no team chat can take the alert, the bot takes
#: the sentence out and asks the patient to call (``chat_health.honest_advice``); so every
#: advice must keep one of them word for word (:func:`check_team_told`), or a unit's rewording
#: would leave a patient told "the team has been alerted" when it was not.
TEAM_TOLD: Final = (
    "The team has been alerted and will contact you.",
    "The team has been alerted.",
    "A nurse will contact you on the next working day.",
)


def team_told(language: str) -> tuple[str, ...]:
    """:data:`TEAM_TOLD` in ``language`` (its catalog's words; English without a catalog)."""
    return tuple(dict.fromkeys(t(language, sentence) for sentence in TEAM_TOLD))


def check_team_told(protocol: Protocol) -> list[tuple[str, str]]:
    """Every safety advice that would not lose its "the team has been alerted" sentence when
    no team chat can take the alert, as (path, message)."""
    problems: list[tuple[str, str]] = []
    for severity in ("emergency", "urgent", "review"):
        advice: LocalizedText = getattr(protocol.safety_advice, severity)
        for language, text in advice.root.items():
            sentences = team_told(language)
            if not any(sentence in text for sentence in sentences):
                quoted = " / ".join(f'"{sentence}"' for sentence in sentences)
                problems.append(
                    (
                        format_location(("safety_advice", severity, language)),
                        f"keep one of these sentences word for word: {quoted} (the bot takes "
                        "it out and asks the patient to call when no team chat can take the "
                        f"alert; the words are in {language}/LC_MESSAGES/messages.po)",
                    )
                )
    return problems
