"""Negation and reassurance around a symptom, read within a few words of one clause."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.parsing.normalise import stem, stemmed_set
from bot.domain.parsing.tokens import Tokens
from bot.domain.parsing.vocabulary import every

# Words that negate a symptom named just after them ("pas de fièvre", "no pus", "sans fièvre").
PRE_NEGATORS = stemmed_set(every(lambda words: words.negation.pre_negators))
# Words that negate a symptom named just before them when they end the clause ("fièvre non").
_POST_NEGATORS = stemmed_set(every(lambda words: words.negation.post_negators))
# Any of these shortly after a symptom makes it doubtful ("le mollet n'est pas dur").
POST_DOUBT = stemmed_set(every(lambda words: words.negation.post_doubt))
# A symptom said to be fading is worth a question, not an alarm ("la rougeur diminue").
_IMPROVING = stemmed_set(every(lambda words: words.negation.improving))
# Typed words that share a stem with an improving word but are not one: English "less" and the
# French article "les".
_NOT_IMPROVING = frozenset(every(lambda words: words.negation.not_improving))
_NEGATION_WINDOW = 4
_POST_WINDOW = 3
# Negators only with "ne"/"n'" just before them ("n'ai plus", "ne ... plus"): "plus de" alone may
# mean more.
_AFTER_NE = stemmed_set(every(lambda words: words.negation.after_ne))
_NE = stemmed_set(every(lambda words: words.negation.ne))
_NE_WINDOW = 2
# "ne" just before a symptom and one of these just after it deny it ("ça ne saigne plus").
_NE_CLOSERS = stemmed_set(every(lambda words: words.negation.ne_closers))
# "no" before a subject is an answer to the question, not a negation of what follows ("no it
# keeps bleeding", "no, the dressing is soaked"); "no pus" still negates.
_ANSWER_WORDS = stemmed_set(every(lambda words: words.negation.answer_words))
_SUBJECTS = stemmed_set(every(lambda words: words.negation.subjects))
# Two words that are no negation unless one of some words follows ("pas mal de fièvre" = quite a
# lot; "pas mal au mollet" = no pain in the calf).
_NOT_NEGATING = {
    (stem(pair.words[0]), stem(pair.words[1])): stemmed_set(pair.negating_before)
    for pair in every(lambda words: words.negation.not_negating)
}

# "le mollet va bien", "my calf feels fine": a bare topic said to be fine is not a mention.
_REASSURING = stemmed_set(every(lambda words: words.negation.reassuring))


def negated_before(tokens: Tokens, start: int, negators: frozenset[str], window: int) -> bool:
    for i in range(start - 1, max(-1, start - window - 1), -1):
        if tokens.clause[i] != tokens.clause[start]:
            return False
        if tokens.words[i] in negators:
            return True
    return False


def reassured(tokens: Tokens, start: int) -> bool:
    """A reassuring word in the clause, not negated ("va bien", not "va pas bien")."""
    clause = tokens.clause[start]
    for i, word in enumerate(tokens.words):
        if (
            tokens.clause[i] == clause
            and word in _REASSURING
            and not (i > 0 and tokens.words[i - 1] in PRE_NEGATORS)
        ):
            return True
    return False


def is_negator(tokens: Tokens, i: int) -> bool:
    word = tokens.words[i]
    if word in _ANSWER_WORDS and i + 1 < len(tokens.words) and tokens.words[i + 1] in _SUBJECTS:
        return False
    if i + 1 < len(tokens.words):
        negating_before = _NOT_NEGATING.get((word, tokens.words[i + 1]))
        if negating_before is not None:
            return i + 2 < len(tokens.words) and tokens.words[i + 2] in negating_before
    if word in _AFTER_NE:
        return any(tokens.words[j] in _NE for j in range(max(0, i - _NE_WINDOW), i))
    return word in PRE_NEGATORS


def pre_negated(tokens: Tokens, start: int, covered: Sequence[bool]) -> bool:
    clause = tokens.clause[start]
    for i in range(start - 1, max(-1, start - _NEGATION_WINDOW - 1), -1):
        if tokens.clause[i] != clause:
            return False
        if not covered[i] and is_negator(tokens, i):
            return True
    return False


def post_negated(tokens: Tokens, end: int, covered: list[bool], start: int | None = None) -> bool:
    """ "fièvre non" / "fever: no" closing its clause, or "ne" before the symptom closed by "pas"
    or "plus" just after it ("ça ne saigne plus", "le mollet ne gonfle pas")."""
    if start is not None and ne_denied(tokens, start, end):
        return True
    if end >= len(tokens.words) or covered[end]:
        return False
    if tokens.clause[end] != tokens.clause[end - 1] or tokens.words[end] not in _POST_NEGATORS:
        return False
    return end + 1 >= len(tokens.words) or tokens.clause[end + 1] != tokens.clause[end]


def ne_denied(tokens: Tokens, start: int, end: int) -> bool:
    """French "ne" just before or inside the symptom's words and a closer within two words after
    them ("ça ne saigne plus" matches "ça saigne")."""
    clause = tokens.clause[start]
    opened = any(
        tokens.words[i] in _NE and tokens.clause[i] == clause
        for i in range(max(0, start - _NE_WINDOW), end)
    )
    return opened and any(
        tokens.words[i] in _NE_CLOSERS and tokens.clause[i] == clause
        for i in range(end, min(len(tokens.words), end + _NE_WINDOW))
    )


def improving_near(tokens: Tokens, start: int, end: int) -> bool:
    clause = tokens.clause[start]
    for i in (*range(max(0, start - 2), start), *range(end, min(len(tokens.words), end + 3))):
        if (
            tokens.clause[i] == clause
            and tokens.words[i] in _IMPROVING
            and tokens.raw[i] not in _NOT_IMPROVING
        ):
            return True
    return False


def post_doubt(tokens: Tokens, end: int, covered: list[bool]) -> bool:
    clause = tokens.clause[end - 1]
    for i in range(end, min(len(tokens.words), end + _POST_WINDOW)):
        if tokens.clause[i] != clause:
            return False
        if not covered[i] and tokens.words[i] in POST_DOUBT:
            return True
    return False
