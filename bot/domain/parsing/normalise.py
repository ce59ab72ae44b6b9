"""Text made comparable: lower-case ASCII, contractions expanded, crude stems.

Every parser reads text through these, so a patient's accents, curly quotes and letter
repetitions never decide an answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from unidecode import unidecode

from bot.domain.parsing.results import MAX_CHARS
from bot.domain.parsing.vocabulary import Ending, LanguageWords, every

# "can't", "doesn't", "isnt"... expanded before anything else is read (each file's contractions).
_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(contraction.pattern), contraction.replacement)
    for contraction in every(lambda words: words.contractions)
)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _transliterate(match: re.Match[str]) -> str:
    return str(unidecode(match.group()))


def to_ascii(text: str) -> str:
    """Cap, transliterate to lower-case ASCII (accents, curly quotes, odd digits), never raise."""
    return _ascii_capped(text[:MAX_CHARS])


@lru_cache(maxsize=256)
def _ascii_capped(text: str) -> str:
    return _NON_ASCII.sub(_transliterate, text.replace("°", " deg ")).lower()


def expand_contractions(text: str) -> str:
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _endings(pick: Callable[[LanguageWords], Iterable[Ending]]) -> tuple[tuple[str, int], ...]:
    """(ending, shortest word) of every language, in reading order, each once."""
    return tuple(dict.fromkeys((rule.ending, rule.min_length) for rule in every(pick)))


# Each language's stems (parsing.yaml): one "once" ending (plural s/x), then "repeated" ones as
# long as they fit (French feminine/past-participle e).
_ONCE = _endings(lambda words: words.stems.once)
_REPEATED = _endings(lambda words: words.stems.repeated)


def _drop(token: str, endings: tuple[tuple[str, int], ...]) -> str | None:
    for ending, shortest in endings:
        if len(token) >= shortest and token.endswith(ending):
            return token[: -len(ending)]
    return None


@lru_cache(maxsize=8192)
def stem(token: str) -> str:
    """A crude, symmetric stem: the endings of the languages' ``stems`` dropped.

    Applied to the text and to every phrase alike, so "gonflée"/"gonflés"/"gonflé"/"gonfle" and
    "cloques"/"cloque" meet. Numbers are left as they are.
    """
    if token[:1].isdigit():
        return token
    token = _drop(token, _ONCE) or token
    while (shorter := _drop(token, _REPEATED)) is not None:
        token = shorter
    return token


def collapse(word: str) -> str:
    """Repeated letters squeezed: "nonn" -> "non", "ouiii" -> "oui", "yesss" -> "yes"."""
    return re.sub(r"(.)\1+", r"\1", word)


def plain_words(text: str) -> list[str]:
    """Unstemmed, letter-collapsed words (yes/no vocabulary is tiny and stemming would blur it)."""
    return [collapse(w) for w in re.findall(r"[a-z0-9]+", expand_contractions(to_ascii(text)))]


def stemmed_set(words: Iterable[str]) -> frozenset[str]:
    return frozenset(stem(w) for w in words)
