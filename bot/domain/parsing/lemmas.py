"""Lemma-like words, used only to match red-flag phrases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from bot.domain.parsing.normalise import stem

#
# Stems merge plurals and French feminine/participle endings. For red flags, the text and every
# phrase are further reduced to a crude, symmetric lemma so that everyday verb forms meet the
# phrase lists: "giving"/"gives"/"gave" -> "giv" (so "knee gives way" reads "my knee keeps
# giving way"), "soaked"/"soaking" -> "soak", "opened"/"opening" -> "open", "portent" -> "port",
# "couldn't" -> "can not", "j'arrive" -> "je arrive". Negations, hedges and clauses are still
# read on the stems.

_IRREGULAR = {
    "gave": "give",
    "given": "give",
    "grew": "grow",
    "grown": "grow",
    "bled": "bleed",
    "could": "can",
    # French elisions: "j'arrive" = "je arrive", "s'ouvre" = "se ouvre", "qu'avant" = "que avant"
    "j": "je",
    "m": "me",
    "t": "te",
    "s": "se",
    "d": "de",
    "c": "ce",
    "qu": "que",
    "n": "ne",
}
_KEEP_WORDS = frozenset({"during"})  # not "dur" (French "dur", hard)
# "can hardly breathe" = "can not breathe", "je peux à peine marcher" = "je peux pas marcher";
# elsewhere ("hardly any bleeding", "à peine gonflé") these are hedges (see _LOCAL_HEDGES).
_BARELY = stem("barely")
_BARELY_WORDS = frozenset(stem(w) for w in ("hardly", "barely", "scarcely"))
_PEINE = stem("peine")
_CAN_WORDS = frozenset(stem(w) for w in ("can", "could"))
_FR_CAN_WORDS = frozenset(
    stem(w)
    for w in (
        "peux",
        "peut",
        "pouvez",
        "pouvons",
        "peuvent",
        "pouvais",
        "pouvait",
        "arrive",
        "arrives",
        "arrivez",
        "arrivais",
        "arrivait",
    )
)


def _undouble(word: str) -> str:
    """ "gett" -> "get", "stopp" -> "stop"; "swell", "dress" keep their double letter."""
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
        return word[:-1]
    return word


@lru_cache(maxsize=8192)
def lemma(stem: str) -> str:
    """A stem reduced further: -ing, -ed, French -ent and a final e dropped (see above)."""
    if stem in _KEEP_WORDS:
        return stem
    word = _IRREGULAR.get(stem, stem)
    return _lemma_suffixes(word) if word.isalpha() else word


def _lemma_suffixes(word: str) -> str:
    if len(word) >= 6 and word.endswith("ing"):
        word = _undouble(word[:-3])
    if len(word) >= 6 and word.endswith("ed") and not word.endswith("eed"):
        word = _undouble(word[:-2])
    elif len(word) >= 7 and word.endswith("ent"):
        word = word[:-3]
    if len(word) >= 4 and word.endswith("e"):
        word = word[:-1]
    return word


def lemmatise(stems: Sequence[str]) -> list[str]:
    """Lemmas of a stemmed text or phrase, reading "can hardly"/"peux à peine" as a negation."""
    lemmas: list[str] = []
    for i, word in enumerate(stems):
        if word in _BARELY_WORDS:
            able = stems[i - 1] in _CAN_WORDS if i else False
            lemmas.append("not" if able else _BARELY)
        elif word == _PEINE and i and stems[i - 1] == "a":
            able = i >= 2 and stems[i - 2] in _FR_CAN_WORDS
            lemmas.append("pas" if able else _BARELY)
        else:
            lemmas.append(lemma(word))
    return lemmas


def lemma_set(words: Iterable[str]) -> frozenset[str]:
    return frozenset(lemma(stem(w)) for w in words)
