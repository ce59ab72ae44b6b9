"""Lemma-like words, used only to match red-flag phrases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.domain.parsing.normalise import stem
from bot.domain.parsing.tokens import phrase_words
from bot.domain.parsing.vocabulary import every, every_mapping, parser_vocabulary

# Stems merge plurals and French feminine/participle endings. For red flags, the text and every
# phrase are further reduced to a crude, symmetric lemma so that everyday verb forms meet the
# phrase lists: "giving"/"gives"/"gave" -> "giv" (so "knee gives way" reads "my knee keeps
# giving way"), "soaked"/"soaking" -> "soak", "opened"/"opening" -> "open", "portent" -> "port",
# "couldn't" -> "can not", "j'arrive" -> "je arrive". Negations, hedges and clauses are still
# read on the stems.

# Irregular forms ("gave" -> "give") and French elisions ("j'arrive" = "je arrive", "s'ouvre" =
# "se ouvre", "qu'avant" = "que avant").
_IRREGULAR = {
    stem(word): replacement
    for word, replacement in every_mapping(lambda words: words.lemmas.irregular).items()
}
_KEEP_WORDS = frozenset(stem(w) for w in every(lambda words: words.lemmas.keep))
# "can hardly breathe" = "can not breathe", "je peux à peine marcher" = "je peux pas marcher";
# elsewhere ("hardly any bleeding", "à peine gonflé") these are hedges, read as this word
# (which red-flag phrases read in their own order).
BARELY = stem("barely")


@dataclass(frozen=True)
class _Barely:
    """A "barely" phrase of one language, with that language's "can" words and "cannot"."""

    phrase: tuple[str, ...]
    can: frozenset[str]
    cannot: str


def _barely_by_last_word() -> dict[str, tuple[_Barely, ...]]:
    found: dict[str, list[_Barely]] = {}
    for words in parser_vocabulary():
        rule = words.lemmas.can_barely
        can = frozenset(stem(w) for w in rule.can)
        for text in rule.barely:
            phrase = phrase_words(text)
            if phrase:
                found.setdefault(phrase[-1], []).append(_Barely(phrase, can, rule.cannot))
    return {word: tuple(rules) for word, rules in found.items()}


_BARELY_BY_LAST_WORD = _barely_by_last_word()


@dataclass(frozen=True)
class _Ending:
    ending: str
    shortest: int
    undouble: bool
    unless: str | None


def _stages() -> tuple[tuple[_Ending, ...], ...]:
    """The languages' lemma endings by stage: stages in turn, the first fitting ending of each."""
    stages: dict[int, dict[_Ending, None]] = {}
    for rule in every(lambda words: words.lemmas.endings):
        ending = _Ending(rule.ending, rule.min_length, rule.undouble, rule.unless)
        stages.setdefault(rule.stage, {})[ending] = None
    return tuple(tuple(stages[stage]) for stage in sorted(stages))


_STAGES = _stages()
# Double letters a dropped ending leaves that are kept ("swelling" -> "swell", not "swel").
_KEPT_DOUBLES = frozenset(every(lambda words: words.lemmas.kept_doubles))


def _undouble(word: str) -> str:
    """ "gett" -> "get", "stopp" -> "stop"; "swell", "dress" keep their double letter."""
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in _KEPT_DOUBLES:
        return word[:-1]
    return word


@lru_cache(maxsize=8192)
def lemma(stem: str) -> str:
    """A stem reduced further by the languages' lemma endings (-ing, -ed, -ent, a final e)."""
    if stem in _KEEP_WORDS:
        return stem
    word = _IRREGULAR.get(stem, stem)
    return _lemma_suffixes(word) if word.isalpha() else word


def _lemma_suffixes(word: str) -> str:
    for stage in _STAGES:
        for rule in stage:
            if (
                len(word) >= rule.shortest
                and word.endswith(rule.ending)
                and not (rule.unless and word.endswith(rule.unless))
            ):
                word = word[: -len(rule.ending)]
                if rule.undouble:
                    word = _undouble(word)
                break
    return word


def lemmatise(stems: Sequence[str]) -> list[str]:
    """Lemmas of a stemmed text or phrase, reading "can hardly"/"peux à peine" as a negation."""
    lemmas: list[str] = []
    for i, word in enumerate(stems):
        barely = _barely_at(stems, i)
        lemmas.append(lemma(word) if barely is None else barely)
    return lemmas


def _barely_at(stems: Sequence[str], end: int) -> str | None:
    """A "barely" phrase ending at ``end``: "cannot" after a "can" word, else :data:`BARELY`."""
    for rule in _BARELY_BY_LAST_WORD.get(stems[end], ()):
        start = end + 1 - len(rule.phrase)
        if start >= 0 and tuple(stems[start : end + 1]) == rule.phrase:
            able = start >= 1 and stems[start - 1] in rule.can
            return rule.cannot if able else BARELY
    return None


def lemma_set(words: Iterable[str]) -> frozenset[str]:
    return frozenset(lemma(stem(w)) for w in words)
