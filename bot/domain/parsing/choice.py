"""Choice answers: the option whose label or synonym the text says, never one picked by place."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from bot.domain.parsing.negation import negated_before
from bot.domain.parsing.normalise import stem, to_ascii
from bot.domain.parsing.results import UNCLEAR, Parsed
from bot.domain.parsing.tokens import phrase_words, tokenize
from bot.domain.parsing.vocabulary import alternatives, every
from bot.domain.protocol import Option

_CHOICE_NEGATORS = frozenset(stem(w) for w in every(lambda words: words.choice.negators))
# "beaucoup moins gonflé" is not "beaucoup": a level followed by a comparative is a change.
_COMPARATIVES = frozenset(stem(w) for w in every(lambda words: words.choice.comparatives))
_FUZZY_CHOICE_CUTOFF = 85.0
_FUZZY_CHOICE_MARGIN = 5.0


@dataclass(frozen=True)
class _ChoicePhrase:
    option: int
    words: tuple[str, ...]
    language: str


@lru_cache(maxsize=256)
def _choice_phrases(
    key: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...],
) -> tuple[_ChoicePhrase, ...]:
    phrases: dict[tuple[int, tuple[str, ...]], _ChoicePhrase] = {}
    for index, (_option_id, by_language) in enumerate(key):
        for language, texts in by_language:
            for text in texts:
                words = phrase_words(text)
                if words and (index, words) not in phrases:
                    phrases[(index, words)] = _ChoicePhrase(index, words, language)
    return tuple(phrases.values())


def _choice_key(
    options: Sequence[Option],
) -> tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]:
    key = []
    for option in options:
        by_language: dict[str, list[str]] = {}
        for language, label in option.label.root.items():
            by_language.setdefault(language, []).append(label)
        for language, synonyms in option.synonyms.root.items():
            by_language.setdefault(language, []).extend(synonyms)
        key.append(
            (option.id, tuple((lang, tuple(texts)) for lang, texts in sorted(by_language.items())))
        )
    return tuple(key)


def parse_choice(text: str, options: Sequence[Option], *, language: str) -> Parsed:
    """The option whose label or synonym (any language) the text says, typo-tolerant.

    Exact phrases win (the longest one when phrases overlap: "un peu gonflé" beats "un peu");
    a negated phrase ("pas beaucoup") is ignored; two different options -> ``unclear`` unless
    only one of them was said in the patient's ``language``. Without an exact phrase, rapidfuzz
    compares word windows; two options within a few points of each other -> ``unclear``.
    A bare number selects an option only when it *is* that option's label.
    """
    try:
        return _parse_choice(text, options, language)
    except Exception:
        return UNCLEAR


def _option_parsed(option: Option) -> Parsed:
    flags = frozenset({option.flag}) if option.flag else frozenset()
    return Parsed("ok", value=option.value, option_id=option.id, flags=flags)


# "no idea" is not the option "no"/"none": a patient who does not know must be asked again.
_DONT_KNOW = re.compile(r"\b" + alternatives(lambda words: words.choice.dont_know) + r"\b")


def _parse_choice(text: str, options: Sequence[Option], language: str) -> Parsed:
    if not options or _DONT_KNOW.search(to_ascii(text)):
        return UNCLEAR
    tokens = tokenize(text)
    words = tokens.words
    if not words:
        return UNCLEAR
    phrases = _choice_phrases(_choice_key(options))

    # Exact phrase occurrences.
    hits: list[tuple[int, int, _ChoicePhrase]] = []
    rejected = False
    for phrase in phrases:
        size = len(phrase.words)
        for start in range(len(words) - size + 1):
            if tuple(words[start : start + size]) != phrase.words:
                continue
            end = start + size
            if (
                phrase.words[0] not in _CHOICE_NEGATORS
                and negated_before(tokens, start, _CHOICE_NEGATORS, 2)
            ) or (end < len(words) and words[end] in _COMPARATIVES):
                rejected = True  # "pas beaucoup", "beaucoup moins": not that level
                continue
            hits.append((start, end, phrase))
    if rejected and not hits:
        return UNCLEAR
    if hits:
        kept = [
            hit
            for hit in hits
            if not any(
                other[0] <= hit[0]
                and hit[1] <= other[1]
                and (other[1] - other[0]) > (hit[1] - hit[0])
                for other in hits
            )
        ]
        chosen = {hit[2].option for hit in kept}
        if len(chosen) > 1:
            chosen = {hit[2].option for hit in kept if hit[2].language == language}
        if len(chosen) == 1:
            return _option_parsed(options[chosen.pop()])
        return UNCLEAR

    # Typo-tolerant: best word-window similarity per option.
    best: dict[int, float] = {}
    joined = " ".join(words)
    for phrase in phrases:
        target = " ".join(phrase.words)
        if len(target) < 4:
            continue
        score = 0.0
        if len(words) <= len(phrase.words) + 1:
            score = fuzz.token_sort_ratio(joined, target)
        size = len(phrase.words)
        for width in {size - 1, size, size + 1} - {0}:
            for start in range(max(1, len(words) - width + 1)):
                window = words[start : start + width]
                if negated_before(tokens, start, _CHOICE_NEGATORS, 2):
                    continue
                score = max(score, fuzz.ratio(" ".join(window), target))
        if score >= _FUZZY_CHOICE_CUTOFF and score > best.get(phrase.option, 0.0):
            best[phrase.option] = score
    if not best:
        return UNCLEAR
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < _FUZZY_CHOICE_MARGIN:
        return UNCLEAR
    return _option_parsed(options[ranked[0][0]])
