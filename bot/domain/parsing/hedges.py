"""Hedges ("un peu", "peut-être", "I think"): they make a red-flag mention doubtful.

Degree hedges apply to their clause; epistemic hedges to the whole sentence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from bot.domain.parsing.tokens import phrase_words
from bot.domain.parsing.vocabulary import every

_LOCAL_HEDGES = every(lambda words: words.hedges.local)
_SENTENCE_HEDGES = every(lambda words: words.hedges.sentence)


@dataclass(frozen=True)
class _Hedges:
    ngrams: dict[tuple[str, ...], bool]  # True: sentence-wide
    prefixes: frozenset[tuple[str, ...]]


def _compile_hedges() -> _Hedges:
    ngrams: dict[tuple[str, ...], bool] = {}
    for phrase in _LOCAL_HEDGES:
        ngrams[phrase_words(phrase)] = False
    for phrase in _SENTENCE_HEDGES:
        ngrams[phrase_words(phrase)] = True
    return _Hedges(ngrams, _prefixes(ngrams))


def _prefixes(phrases: Iterable[tuple[str, ...]]) -> frozenset[tuple[str, ...]]:
    """Every leading part of every phrase: the n-gram scan stops as soon as none continues."""
    return frozenset(phrase[:size] for phrase in phrases for size in range(1, len(phrase) + 1))


def _find_ngrams(
    words: Sequence[str], prefixes: frozenset[tuple[str, ...]]
) -> Iterator[tuple[int, int, tuple[str, ...]]]:
    """(start, end, words) of every phrase-prefix occurrence, shortest first at each start."""
    for start in range(len(words)):
        end = start + 1
        while end <= len(words):
            key = tuple(words[start:end])
            if key not in prefixes:
                break
            yield start, end, key
            end += 1


_HEDGES = _compile_hedges()


def find_hedges(words: list[str]) -> list[tuple[int, int, bool]]:
    spans = []
    for start, end, key in _find_ngrams(words, _HEDGES.prefixes):
        wide = _HEDGES.ngrams.get(key)
        if wide is not None:
            spans.append((start, end, wide))
    return spans
