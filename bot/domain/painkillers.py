"""Painkillers taken in the last 7 days: the classes the unit reports, and reading them in text.

Opioid use is one of the four outcomes cryoneurolysis is offered for, so the bot asks which
painkillers a patient took and on how many days. Patients answer with buttons or in their own
words: a drug name, a French brand (Doliprane, Ixprim, Topalgic...), a class ("un
anti-inflammatoire") or a typo of any of these. The names are DATA (``painkillers.yaml`` next to
this module), matched accent-insensitively, in every language, typo-tolerantly with rapidfuzz.

Like every parser here it never guesses: a name read only approximately, or said with a hedge
("je crois du tramadol"), is ``doubtful`` and the bot asks a yes/no button question; a reply
naming no drug ("des cachets", "je ne sais plus") is ``unclear`` and the buttons are shown
again. Pure: no I/O after the file is read once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from rapidfuzz import fuzz, process

from bot.domain.parsing.normalise import plain_words, to_ascii

__all__ = [
    "CLASS_IDS",
    "DAYS_IN_WEEK",
    "OPIOIDS",
    "PainkillerClass",
    "PainkillerReading",
    "PainkillerUse",
    "any_opioid",
    "read_days",
    "read_painkillers",
]

DAYS_IN_WEEK = 7
_DATA_FILE = "painkillers.yaml"
#: A typo at least this close to a name (rapidfuzz ratio) is read as that name for certain...
_CERTAIN = 85.0
#: ... and at least this close, as a doubtful mention (the bot asks "did you mean ...?").
_DOUBTFUL = 72.0
#: Shorter words are never typo-matched ("avril" is not "advil").
_FUZZY_MIN_LETTERS = 5


class PainkillerClass(StrEnum):
    """The classes the unit reports; ``none`` is an answer, not a class taken."""

    NONE = "none"
    PARACETAMOL = "paracetamol"
    NSAID = "nsaid"
    WEAK_OPIOID = "weak_opioid"
    STRONG_OPIOID = "strong_opioid"
    OTHER = "other"


#: The classes a patient can have taken, in button order.
CLASS_IDS: tuple[str, ...] = tuple(
    c.value for c in PainkillerClass if c is not PainkillerClass.NONE
)
#: The classes that count as opioids (the outcome "any opioid").
OPIOIDS = frozenset({PainkillerClass.WEAK_OPIOID.value, PainkillerClass.STRONG_OPIOID.value})


def any_opioid(classes: Iterable[str]) -> bool:
    """True when one of ``classes`` is an opioid."""
    return any(name in OPIOIDS for name in classes)


@dataclass(frozen=True)
class PainkillerUse:
    """What a patient took in the last 7 days: the classes (empty: none) and on how many days."""

    classes: frozenset[str]
    days: int | None

    @property
    def opioid(self) -> bool:
        """True when an opioid was taken."""
        return any_opioid(self.classes)


@dataclass(frozen=True)
class PainkillerReading:
    """What a typed reply said.

    ``ok`` with no classes means "none taken" (``days`` is then 0); ``doubtful`` carries the
    classes and the ``names`` to check with the patient; ``unclear`` says nothing usable.
    """

    status: Literal["ok", "doubtful", "unclear"]
    classes: frozenset[str] = frozenset()
    days: int | None = None
    names: tuple[str, ...] = ()


_UNCLEAR = PainkillerReading("unclear")


@dataclass(frozen=True)
class _Name:
    words: tuple[str, ...]
    classes: frozenset[str]
    shown: str


@dataclass(frozen=True)
class _Vocabulary:
    names: tuple[_Name, ...]
    single: dict[str, _Name]
    single_keys: tuple[str, ...]
    none: tuple[tuple[str, ...], ...]
    generic: tuple[tuple[str, ...], ...]
    dont_know: tuple[tuple[str, ...], ...]
    every_day: tuple[tuple[str, ...], ...]
    hedges: tuple[tuple[str, ...], ...]
    negators: frozenset[str]
    day_units: frozenset[str]
    dose_units: frozenset[str]
    per_day: tuple[tuple[str, ...], ...]
    day_numbers: dict[str, int]
    stop_words: frozenset[str]


def _words(phrase: str) -> tuple[str, ...]:
    return tuple(plain_words(phrase))


def _phrases(items: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    found = {_words(item) for item in items}
    return tuple(sorted((p for p in found if p), key=len, reverse=True))


@lru_cache(maxsize=1)
def _vocabulary() -> _Vocabulary:
    """The names and words of ``painkillers.yaml``, normalised once."""
    text = resources.files(__package__ or "bot.domain").joinpath(_DATA_FILE).read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    names: dict[tuple[str, ...], _Name] = {}
    for class_id, items in data["classes"].items():
        if class_id not in CLASS_IDS:
            raise ValueError(f"{_DATA_FILE}: unknown class {class_id!r}")
        for item in items:
            words = _words(item)
            names[words] = _Name(words, frozenset({class_id}), item)
    for combination in data.get("combinations", []):
        classes = frozenset(combination["classes"])
        if not classes <= set(CLASS_IDS):
            raise ValueError(f"{_DATA_FILE}: unknown class in {combination}")
        for item in combination["names"]:
            words = _words(item)
            names[words] = _Name(words, classes, item)
    ordered = tuple(sorted(names.values(), key=lambda name: len(name.words), reverse=True))
    lists = {
        key: _phrases(data.get(key, []))
        for key in ("none", "generic", "dont_know", "every_day", "hedges", "per_day")
    }
    day_numbers = {word: int(value) for word, value in data.get("day_numbers", {}).items()}
    day_numbers = {_words(word)[0]: value for word, value in day_numbers.items()}
    stop = {w for phrases in lists.values() for phrase in phrases for w in phrase}
    stop |= set(day_numbers)
    return _Vocabulary(
        names=ordered,
        single={n.words[0]: n for n in ordered if len(n.words) == 1},
        single_keys=tuple(n.words[0] for n in ordered if len(n.words) == 1),
        none=lists["none"],
        generic=lists["generic"],
        dont_know=lists["dont_know"],
        every_day=lists["every_day"],
        hedges=lists["hedges"],
        negators=frozenset(w for item in data.get("negators", []) for w in _words(item)),
        day_units=frozenset(w for item in data.get("day_units", []) for w in _words(item)),
        dose_units=frozenset(w for item in data.get("dose_units", []) for w in _words(item)),
        per_day=lists["per_day"],
        day_numbers=day_numbers,
        stop_words=frozenset(stop),
    )


def _find(words: Sequence[str], phrase: tuple[str, ...], taken: set[int]) -> list[int]:
    """Start positions where ``phrase`` occurs in ``words`` on positions not yet taken."""
    size = len(phrase)
    starts = []
    for start in range(len(words) - size + 1):
        span = range(start, start + size)
        if tuple(words[start : start + size]) == phrase and not taken.intersection(span):
            starts.append(start)
            taken.update(span)
    return starts


def _contains(words: Sequence[str], phrases: Iterable[tuple[str, ...]]) -> bool:
    return any(_find(words, phrase, set()) for phrase in phrases)


def _negated(words: Sequence[str], start: int, negators: frozenset[str]) -> bool:
    return any(word in negators for word in words[max(0, start - 2) : start])


def read_painkillers(text: str) -> PainkillerReading:
    """The painkiller classes (and days, when said) in a typed reply; never raises."""
    try:
        return _read(text)
    except Exception:
        return _UNCLEAR


def _read(text: str) -> PainkillerReading:
    vocabulary = _vocabulary()
    words = plain_words(text)
    if not words:
        return _UNCLEAR
    taken: set[int] = set()
    classes: set[str] = set()
    names: list[str] = []
    doubtful = negated = False
    for name in vocabulary.names:
        for start in _find(words, name.words, taken):
            if _negated(words, start, vocabulary.negators):
                negated = True
                continue
            classes |= name.classes
            names.append(name.shown)
    for index, word in enumerate(words):
        if index in taken or len(word) < _FUZZY_MIN_LETTERS or word in vocabulary.stop_words:
            continue
        found = process.extractOne(
            word,
            vocabulary.single_keys,
            scorer=fuzz.ratio,
            score_cutoff=_DOUBTFUL,
            processor=None,
        )
        if found is None:
            continue
        name = vocabulary.single[found[0]]
        if found[1] < (_CERTAIN if len(name.words[0]) <= 6 else _CERTAIN - 5):
            doubtful = True
        taken.add(index)
        if _negated(words, index, vocabulary.negators):
            negated = True
            continue
        classes |= name.classes
        names.append(name.shown)
    if _contains(words, vocabulary.dont_know):
        return _UNCLEAR
    if classes:
        hedged = _contains(words, vocabulary.hedges) or text.strip().endswith("?")
        return PainkillerReading(
            "doubtful" if doubtful or hedged else "ok",
            frozenset(classes),
            read_days(text, bare=False),
            tuple(dict.fromkeys(names)),
        )
    rest = [w for i, w in enumerate(words) if i not in taken]
    none_said = any(_find(rest, phrase, set()) for phrase in vocabulary.none)
    if _contains(_without_none(rest, vocabulary), vocabulary.generic):
        return _UNCLEAR
    if none_said or negated:
        return PainkillerReading("ok", frozenset(), 0)
    return _UNCLEAR


def _without_none(words: list[str], vocabulary: _Vocabulary) -> list[str]:
    """``words`` without the "none" phrases ("pas d'antidouleur" is no generic mention)."""
    taken: set[int] = set()
    for phrase in vocabulary.none:
        _find(words, phrase, taken)
    return [w if i not in taken else "" for i, w in enumerate(words)]


_DIGITS = re.compile(r"^\d+$")


def read_days(text: str, *, bare: bool = True) -> int | None:
    """On how many of the last 7 days: "3 jours", "deux fois", "tous les jours", "5/7".

    ``bare``: a number alone ("3") counts too (the reply to "on how many days?"); inside a
    longer reply only a number with a day word does ("doliprane 1000" is a dose). A dose or a
    frequency ("3 fois par jour", "1 g") is never a day count; two different counts, or a
    count above 7, give None (the bot then asks with buttons). Never raises.
    """
    try:
        return _days(text, bare)
    except Exception:
        return None


def _number(word: str, vocabulary: _Vocabulary) -> int | None:
    if _DIGITS.match(word):
        return int(word)
    return vocabulary.day_numbers.get(word)


def _days(text: str, bare: bool) -> int | None:
    vocabulary = _vocabulary()
    ascii_text = to_ascii(text)
    fraction = re.search(r"\b(\d)\s*(?:/|sur|out of)\s*7\b", ascii_text)
    if fraction:
        out_of_seven = int(fraction.group(1))
        return out_of_seven if out_of_seven <= DAYS_IN_WEEK else None
    words = plain_words(text)
    if _contains(words, vocabulary.every_day):
        return DAYS_IN_WEEK
    found: set[int] = set()
    for index, word in enumerate(words):
        value = _number(word, vocabulary)
        if value is None:
            continue
        after = words[index + 1 : index + 4]
        if after and after[0] in vocabulary.dose_units:
            continue
        if _contains(after, vocabulary.per_day) or (after[:1] and after[0] == "x"):
            continue
        counted = bool(after) and after[0] in vocabulary.day_units
        if counted or (bare and len(words) <= 3):
            found.add(value)
    if len(found) != 1:
        return None
    days = found.pop()
    return days if 0 <= days <= DAYS_IN_WEEK else None
