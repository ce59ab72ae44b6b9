"""Red flags in free text: phrases of every language, typo-tolerant, negation- and hedge-aware."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.domain.parsing.flag_phrases import (
    FILLERS,
    LOOSE_SPAN,
    MAX_FILLERS,
    SKIPPABLE,
    CompiledFlags,
    FlagPhrase,
    compiled_flags,
    correct_typo,
)
from bot.domain.parsing.hedges import find_hedges
from bot.domain.parsing.lemmas import lemmatise
from bot.domain.parsing.negation import (
    POST_DOUBT,
    improving_near,
    is_negator,
    post_doubt,
    post_negated,
    pre_negated,
    reassured,
)
from bot.domain.parsing.results import FlagMention
from bot.domain.parsing.temperature import read_temperature
from bot.domain.parsing.tokens import Tokens, tokenize
from bot.domain.protocol import RedFlag


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    phrase: FlagPhrase
    fuzzy: bool
    loose: bool = False  # key words in any order: always doubtful


def scan_red_flags(
    text: str, red_flags: Mapping[str, RedFlag], *, fever_threshold: float = 38.0
) -> list[FlagMention]:
    """Red flags mentioned in free text, in the protocol's order, one mention per flag.

    Phrases of every language are matched on accent-free, lightly lemmatised words ("giving" =
    "gives", "soaked" = "soaking", "j'" = "je"; articles, "is"/"est" and French "ne" are
    skipped). Between the words of a phrase, up to three filler words of the same clause are
    allowed ("le genou est *tout* rouge et chaud", "the skin *has turned* grey", "can't put
    *any* weight"), and a two-word phrase reads both ways ("grey skin" = "skin grey").
    ``certain``: such a match, not hedged, not in a question, no negation just after.
    ``doubtful``: a typo match, a hedge ("peut-être", "un peu", "I think", "normal"), a
    question, a bare body part ("mollet", "calf"), a negation a few words later ("le mollet
    n'est pas gonflé"), or only the key words of a phrase in another order within one clause
    ("the skin where they froze it is grey"). Dropped: a phrase negated just before ("pas de
    fièvre", "no pus", "ni pus ni rougeur", "sans fièvre") or by a "non"/"no" ending its clause
    ("fièvre non, rougeur oui"). Phrases that carry their own negation ("can't walk", "je ne
    peux pas marcher") are matched whole and do trigger; "can hardly"/"je peux à peine" read as
    "can not"/"je peux pas".

    Fever: a temperature >= ``fever_threshold`` (see :func:`read_temperature`) is a certain
    mention with that temperature; a lower one cancels fever words ("temp 37.5", "fièvre 37,2")
    but not chills. Only the first :data:`MAX_CHARS` characters are read; never raises.
    """
    try:
        return _scan(text, red_flags, fever_threshold)
    except Exception:
        return []


def denied_flags(
    text: str, red_flags: Mapping[str, RedFlag], *, fever_threshold: float = 38.0
) -> frozenset[str]:
    """Flags whose phrase the text names only to deny it ("no, it is not bleeding any more",
    "ça ne saigne plus"): a negation there agrees with a "no" instead of contradicting it."""
    denied: set[str] = set()
    try:
        mentioned = {m.flag for m in _scan(text, red_flags, fever_threshold, denied)}
    except Exception:
        return frozenset()
    return frozenset(denied - mentioned)


def _match_from(
    words: Sequence[str],
    skip: Sequence[bool],
    filler: Sequence[bool],
    clause: Sequence[int],
    start: int,
    pattern: tuple[str, ...],
) -> int | None:
    """End of ``pattern`` read from ``start``: skippable words anywhere, a few fillers inside
    the clause; None when it does not match."""
    last = start
    j = start + 1
    fillers = 0
    for word in pattern[1:]:
        while True:
            if j >= len(words):
                return None
            if words[j] == word:
                break
            if skip[j]:
                j += 1
                continue
            if filler[j] and fillers < MAX_FILLERS and clause[j] == clause[last]:
                fillers += 1
                j += 1
                continue
            return None
        last = j
        j += 1
    return last + 1


def _loose_matches(
    words: Sequence[str],
    skip: Sequence[bool],
    tokens: Tokens,
    compiled: CompiledFlags,
    found: set[str],
    explained: Sequence[bool],
) -> list[_Match]:
    """Key words of a phrase in any order within one clause, no negation among them."""
    positions: dict[str, list[int]] = {}
    for i, word in enumerate(words):
        if not skip[i]:
            positions.setdefault(word, []).append(i)
    candidates: dict[int, FlagPhrase] = {}
    for word in positions:
        for phrase in compiled.by_key.get(word, ()):
            if phrase.flag not in found:
                candidates[id(phrase)] = phrase
    matches: list[_Match] = []
    for phrase in candidates.values():
        if phrase.flag in found or not phrase.keys <= positions.keys():
            continue
        anchor, *others = sorted(phrase.keys, key=lambda k: (len(positions[k]), k))
        for p in positions[anchor]:
            chunk = tokens.chunk[p]
            chosen = [p]
            for key in others:
                near = [q for q in positions[key] if tokens.chunk[q] == chunk]
                if not near:
                    break
                chosen.append(min(near, key=lambda q: abs(q - p)))
            else:
                low, high = min(chosen), max(chosen)
                if (
                    high - low < LOOSE_SPAN
                    and not all(explained[q] for q in chosen)
                    and not pre_negated(tokens, low, explained)
                    and not any(
                        is_negator(tokens, i) or tokens.words[i] in POST_DOUBT
                        for i in range(low, high + 1)
                    )
                ):
                    matches.append(_Match(low, high + 1, phrase, fuzzy=True, loose=True))
                    found.add(phrase.flag)
                    break
    return matches


def _scan(
    text: str,
    red_flags: Mapping[str, RedFlag],
    fever_threshold: float,
    denied: set[str] | None = None,
) -> list[FlagMention]:
    """The scan; ``denied`` (when given) collects the flags of phrases dropped by a negation."""
    if not red_flags or not text:
        return []
    compiled = compiled_flags(red_flags)
    tokens = tokenize(text)
    words = tokens.words
    count = len(words)
    lemmas = lemmatise(words)
    skip = [w in SKIPPABLE for w in words]
    filler = [w in FILLERS for w in lemmas]

    # Typo correction towards the phrase vocabulary (only long words, same first letter).
    corrected = list(lemmas)
    fuzzy = [False] * count
    for i, word in enumerate(lemmas):
        if (
            len(word) < 5
            or word in compiled.vocabulary
            or not word.isalpha()
            or skip[i]
            or filler[i]
        ):
            continue
        candidates = compiled.by_initial.get(word[0])
        if candidates:
            replacement = correct_typo(word, candidates)
            if replacement is not None:
                corrected[i] = replacement
                fuzzy[i] = True

    # Phrase occurrences (skippable words and a few fillers may sit between their words).
    matches: list[_Match] = []
    present = frozenset(corrected)
    for i in range(count):
        if skip[i]:
            continue
        for pattern in compiled.by_first.get(corrected[i], ()):
            if not pattern.needed <= present:
                continue
            end = _match_from(corrected, skip, filler, tokens.clause, i, pattern.words)
            if end is not None:
                matches.append(_Match(i, end, pattern.phrase, any(fuzzy[i:end])))
    explained = [False] * count
    for m in matches:
        for i in range(m.start, m.end):
            explained[i] = True
    matches += _loose_matches(
        corrected, skip, tokens, compiled, {m.phrase.flag for m in matches}, explained
    )
    temperature = read_temperature(text) if compiled.fever_flags else None
    if not matches and temperature is None:
        return []

    # A phrase inside a longer phrase of another flag is only worth a question ("red and hot"
    # inside "knee is red and hot", "leaking" inside "wound is leaking").
    inner = {
        id(m)
        for m in matches
        if any(
            not o.loose
            and o.start <= m.start
            and m.end <= o.end
            and len(o.phrase.words) > len(m.phrase.words)
            and o.phrase.flag != m.phrase.flag
            for o in matches
        )
    }
    covered = list(explained)

    hedge_spans = find_hedges(words)
    for start, end, _wide in hedge_spans:
        for i in range(start, end):
            covered[i] = True  # "not sure", "je ne sais pas": not negations of a symptom

    # A negation before a phrase also covers the shorter phrases inside it ("pas de douleur
    # dans la poitrine ni de serrement dans la poitrine", "no blood soaking through").
    negated = {
        id(m) for m in matches if not m.phrase.negative and pre_negated(tokens, m.start, covered)
    }
    outer = [m for m in matches if id(m) in negated and not m.loose]
    best: dict[str, Literal["certain", "doubtful"]] = {}
    for m in matches:
        if (
            id(m) in negated
            or post_negated(tokens, m.end, covered, None if m.phrase.negative else m.start)
            or any(o.start <= m.start and m.end <= o.end for o in outer)
        ):
            if denied is not None:
                denied.add(m.phrase.flag)
            continue
        if m.phrase.topic and reassured(tokens, m.start):
            continue
        doubtful = (
            m.fuzzy
            or id(m) in inner
            or m.phrase.topic
            or m.phrase.degree
            or _hedged(tokens, m, hedge_spans)
            or tokens.sentence[m.start] in tokens.questions
            or post_doubt(tokens, m.end, covered)
            or improving_near(tokens, m.start, m.end)
        )
        if (
            temperature is not None
            and temperature < fever_threshold
            and m.phrase.fever
            and m.phrase.flag in compiled.fever_flags
        ):
            continue  # a measured normal temperature: the fever word was about the measure
        certainty: Literal["certain", "doubtful"] = "doubtful" if doubtful else "certain"
        if best.get(m.phrase.flag) != "certain":
            best[m.phrase.flag] = certainty

    if temperature is not None and temperature >= fever_threshold:
        for flag in compiled.fever_flags:
            best[flag] = "certain"
    return [
        FlagMention(
            flag,
            best[flag],
            temperature if flag in compiled.fever_flags else None,
        )
        for flag in compiled.order
        if flag in best
    ]


def _hedged(tokens: Tokens, m: _Match, hedge_spans: list[tuple[int, int, bool]]) -> bool:
    """A hedge in the match's clause (degree) or sentence (doubt), unless it is part of the
    phrase itself ("can hardly breathe")."""
    for start, end, wide in hedge_spans:
        if not m.loose and m.start <= start and end <= m.end:
            continue
        if wide and tokens.sentence[start] == tokens.sentence[m.start]:
            return True
        if not wide and tokens.clause[start] == tokens.clause[m.start]:
            return True
    return False
