"""The protocol's red-flag phrases compiled into lookup tables, cached per protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.domain.parsing.lemmas import BARELY, lemma, lemma_set, lemmatise
from bot.domain.parsing.negation import PRE_NEGATORS
from bot.domain.parsing.normalise import stemmed_set
from bot.domain.parsing.tokens import phrase_words
from bot.domain.parsing.vocabulary import every
from bot.domain.protocol import RedFlag

# A bare body part, measurement or worry is a topic, not a symptom: doubtful ("mon mollet va
# bien", "la fièvre est tombée", "peur d'une infection"). Longer phrases around them stay certain.
_TOPIC_WORDS = stemmed_set(every(lambda words: words.red_flags.topic_words))
# A phrase made only of degree words ("much worse", "bien pire") says how much, not what: asking
# is enough.
_DEGREE_WORDS = stemmed_set(every(lambda words: words.red_flags.degree_words))
# Skipped when matching phrases, in the text and in the phrases alike, so "calf is swollen" =
# "calf swollen", "la peau est toute blanche" = "peau toute blanche", "pain in my calf" = "pain in
# the calf". French "ne" is optional in speech: "je peux pas marcher" = "je ne peux pas marcher".
# Negations, hedges and clauses are still read on the full text.
SKIPPABLE = stemmed_set(every(lambda words: words.red_flags.skippable))
# Phrases with one of these words report fever; a measured normal temperature cancels them.
_FEVER_WORDS = stemmed_set(every(lambda words: words.red_flags.fever_words))
# Words that may sit between the words of a phrase without changing what it says: intensifiers,
# auxiliaries, linking verbs, object pronouns ("le genou est TOUT rouge et chaud", "the skin HAS
# TURNED grey", "my knee KEEPS giving way", "I can't put ANY weight", "le genou ME lâche").
# At most MAX_FILLERS of them, in the clause of the phrase; a negation is never one of them.
FILLERS = lemma_set(every(lambda words: words.red_flags.fillers))
MAX_FILLERS = 3
# Not key words of a phrase (grammar, pronouns, degree): a phrase's key words are the rest.
_NOT_KEYS = (
    lemma_set(every(lambda words: words.red_flags.not_keys))
    | FILLERS
    | frozenset(lemma(w) for w in SKIPPABLE)
    | frozenset(lemma(w) for w in _DEGREE_WORDS)
)
# A phrase with one of these is only read in its own word order: negations ("can't walk"),
# comparisons and times ("worse than before", "pire qu'avant", "plus gonflé qu'hier"), and a
# "barely" that is no "cannot" ("à peine gonflé").
_ORDERED = lemma_set(every(lambda words: words.red_flags.ordered)) | {lemma(BARELY)}
# Key words of one phrase found in any order within this many words of one clause ("the skin
# where they froze it is grey" for "skin grey") make a doubtful mention: the bot asks.
LOOSE_SPAN = 8


@dataclass(frozen=True)
class FlagPhrase:
    flag: str
    words: tuple[str, ...]  # lemmas, skippable words left out
    fever: bool
    topic: bool  # a bare body part / measure / worry: doubtful
    degree: bool  # degree words only ("much worse"): doubtful
    keys: frozenset[str]  # key words for the any-order reading; empty: exact order only
    # starts with a negation ("aucune force dans la jambe", "no strength in my leg"): a negation
    # before it agrees with it ("je n'ai plus aucune force") instead of cancelling it
    negative: bool = False


@dataclass(frozen=True)
class _Pattern:
    phrase: FlagPhrase
    words: tuple[str, ...]  # the phrase's words, or the two words of a pair reversed
    needed: frozenset[str]  # all of them: a quick test before reading the text word by word


@dataclass(frozen=True)
class CompiledFlags:
    by_first: dict[str, tuple[_Pattern, ...]]
    by_key: dict[str, tuple[FlagPhrase, ...]]
    vocabulary: frozenset[str]
    by_initial: dict[str, tuple[str, ...]]
    order: tuple[str, ...]
    fever_flags: frozenset[str]


def _flag_phrase(flag: str, phrase: str) -> FlagPhrase | None:
    stems = phrase_words(phrase)
    pairs = [(s, w) for s, w in zip(stems, lemmatise(stems), strict=True) if s not in SKIPPABLE]
    pairs = pairs or list(zip(stems, lemmatise(stems), strict=True))
    if not pairs:
        return None
    kept = tuple(s for s, _w in pairs)
    words = tuple(w for _s, w in pairs)
    keys = frozenset(w for w in words if w not in _NOT_KEYS and w.isalpha())
    if len(keys) < 2 or any(w in _ORDERED for w in words):
        keys = frozenset()
    return FlagPhrase(
        flag,
        words,
        fever=any(s in _FEVER_WORDS for s in kept),
        topic=len(kept) == 1 and kept[0] in _TOPIC_WORDS,
        degree=all(s in _DEGREE_WORDS for s in kept),
        keys=keys,
        negative=kept[0] in PRE_NEGATORS,
    )


def _compile_flags(red_flags: Mapping[str, RedFlag]) -> CompiledFlags:
    by_first: dict[str, list[_Pattern]] = {}
    by_key: dict[str, list[FlagPhrase]] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    fever_flags: set[str] = set()
    for flag, red_flag in red_flags.items():
        for text in red_flag.phrases.all():
            phrase = _flag_phrase(flag, text)
            if phrase is None or (flag, phrase.words) in seen:
                continue
            seen.add((flag, phrase.words))
            if phrase.fever:
                fever_flags.add(flag)
            by_first.setdefault(phrase.words[0], []).append(
                _Pattern(phrase, phrase.words, frozenset(phrase.words))
            )
            if len(phrase.words) == 2 and len(phrase.keys) == 2:
                # a pair of key words reads both ways: "grey skin" / "skin grey"
                reverse = (phrase.words[1], phrase.words[0])
                by_first.setdefault(reverse[0], []).append(
                    _Pattern(phrase, reverse, frozenset(reverse))
                )
            for key in phrase.keys:
                by_key.setdefault(key, []).append(phrase)
    vocabulary = frozenset(w for patterns in by_first.values() for p in patterns for w in p.words)
    by_initial: dict[str, list[str]] = {}
    for word in sorted(vocabulary):
        if len(word) >= 6 and word.isalpha():
            by_initial.setdefault(word[0], []).append(word)
    return CompiledFlags(
        by_first={k: tuple(v) for k, v in by_first.items()},
        by_key={k: tuple(v) for k, v in by_key.items()},
        vocabulary=vocabulary,
        by_initial={k: tuple(v) for k, v in by_initial.items()},
        order=tuple(red_flags),
        fever_flags=frozenset(fever_flags),
    )


# Cache of compiled phrase tables, keyed by the mapping's identity and checked against a cheap
# fingerprint (flag ids and RedFlag object identities: RedFlag is frozen). The cache holds a
# reference to the mapping, so an id cannot be reused while its entry lives.
_COMPILED: dict[int, tuple[Mapping[str, RedFlag], tuple[tuple[str, int], ...], CompiledFlags]] = {}
_COMPILED_MAX = 16


def compiled_flags(red_flags: Mapping[str, RedFlag]) -> CompiledFlags:
    fingerprint = tuple((flag, id(rf)) for flag, rf in red_flags.items())
    entry = _COMPILED.get(id(red_flags))
    if entry is not None and entry[0] is red_flags and entry[1] == fingerprint:
        return entry[2]
    compiled = _compile_flags(red_flags)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[id(red_flags)] = (red_flags, fingerprint, compiled)
    return compiled


@lru_cache(maxsize=4096)
def correct_typo(word: str, candidates: tuple[str, ...]) -> str | None:
    """The phrase word one typo away (two for long words), same first letter; else None."""
    limit = 2 if len(word) >= 10 else 1
    found = process.extractOne(word, candidates, scorer=OSA.distance, score_cutoff=limit)
    if found is None:
        return None
    candidate = str(found[0])
    if limit == 1 and len(candidate) < 6:
        return None
    return candidate
