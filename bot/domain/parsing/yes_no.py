"""Yes/no answers: explicit words and phrases only; unsure or mixed answers are unclear."""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import OSA

from bot.domain.parsing.normalise import collapse, plain_words
from bot.domain.parsing.results import UNCLEAR, Parsed
from bot.domain.parsing.vocabulary import every

_YES_WORDS = frozenset(collapse(w) for w in every(lambda words: words.yes_no.yes_words))
_NO_WORDS = frozenset(collapse(w) for w in every(lambda words: words.yes_no.no_words))
_SINGLE_YES = frozenset(every(lambda words: words.yes_no.single_yes))
_SINGLE_NO = frozenset(every(lambda words: words.yes_no.single_no))
# Yes only as the first word (French "si", to a negative question).
_YES_FIRST = frozenset(every(lambda words: words.yes_no.yes_first_word))
# Sequences are matched longest first; of one length, in the order of the files (which matters
# where two can overlap: "pas du tout" / "tout a fait").
_YES_PHRASES = every(lambda words: words.yes_no.yes_phrases)
_NO_PHRASES = every(lambda words: words.yes_no.no_phrases)
# Answers that say "I don't know": always unclear, even if "no" is in them ("no idea").
_UNSURE_PHRASES = every(lambda words: words.yes_no.unsure_phrases)
# Real words one typo away from yes/no that must not be read as an answer.
_NOT_TYPOS = frozenset(every(lambda words: words.yes_no.not_typos))


def _phrase_tokens(phrases: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        sorted(
            (tuple(collapse(w) for w in p.split()) for p in phrases),
            key=len,
            reverse=True,
        )
    )


_YES_SEQ = _phrase_tokens(_YES_PHRASES)
_NO_SEQ = _phrase_tokens(_NO_PHRASES)
_UNSURE_SEQ = _phrase_tokens(_UNSURE_PHRASES)
_FUZZY_YES_NO = sorted(w for w in _YES_WORDS | _NO_WORDS if len(w) >= 3)


def _find_sequence(words: list[str], sequence: tuple[str, ...], used: list[bool]) -> bool:
    size = len(sequence)
    found = False
    for start in range(len(words) - size + 1):
        if tuple(words[start : start + size]) == sequence and not any(used[start : start + size]):
            for i in range(start, start + size):
                used[i] = True
            found = True
    return found


def _yes_no(text: str) -> bool | None:
    words = plain_words(text)
    if not words:
        return None
    used = [False] * len(words)
    if any(_find_sequence(words, seq, used) for seq in _UNSURE_SEQ):
        return None
    yes = no = False
    for seq in sorted((*_YES_SEQ, *_NO_SEQ), key=len, reverse=True):
        if _find_sequence(words, seq, used):
            if seq in _NO_SEQ:
                no = True
            else:
                yes = True
    for index, word in enumerate(words):
        if used[index]:
            continue
        if word in _YES_WORDS or (word in _YES_FIRST and index == 0):
            yes = True
        elif word in _NO_WORDS:
            no = True
    if len(words) == 1 and not (yes or no):
        word = words[0]
        if word in _SINGLE_YES:
            yes = True
        elif word in _SINGLE_NO:
            no = True
        elif len(word) >= 3 and word not in _NOT_TYPOS:
            near = {
                w
                for w in _FUZZY_YES_NO
                if w[0] == word[0] and OSA.distance(word, w, score_cutoff=1) <= 1
            }
            yes = bool(near & _YES_WORDS)
            no = bool(near & _NO_WORDS)
    if yes == no:
        return None
    return yes


def words_besides_answer(text: str) -> list[str]:
    """The words of a reply that are not its yes/no answer ("no, it won't stop" -> "it will
    not stop"; "pas du tout" and "not at all" are the answer), unstemmed."""
    words = plain_words(text)
    if len(words) == 1 and words[0] in _SINGLE_YES | _SINGLE_NO:
        return []
    used = [False] * len(words)
    for seq in sorted((*_UNSURE_SEQ, *_YES_SEQ, *_NO_SEQ), key=len, reverse=True):
        _find_sequence(words, seq, used)
    return [
        word
        for index, word in enumerate(words)
        if not used[index]
        and word not in _YES_WORDS
        and word not in _NO_WORDS
        and not (index == 0 and word in _YES_FIRST)
    ]


def parse_yes_no(text: str) -> Parsed:
    """ "oui", "yep", "bien sûr", "o" -> yes (1); "non", "nope", "pas du tout", "n" -> no (0).

    Mixed ("oui et non"), unsure ("peut-être", "no idea") or neither -> ``unclear``. Small typos
    of a one-word answer are tolerated ("oiu", "nonn").
    """
    try:
        answer = _yes_no(text)
    except Exception:
        return UNCLEAR
    if answer is None:
        return UNCLEAR
    return (
        Parsed("ok", value=1, option_id="yes") if answer else Parsed("ok", value=0, option_id="no")
    )
