"""Patients' questions about the expected course ("numb below the kneecap, is that normal?").

Which of the protocol's education topics (:class:`~bot.domain.protocol.Education`) a message
asks about: it must be a question (a "?" or one of the ``asking`` words) and name a topic's
keyword, not negated ("pas de bleu"). Words of every language are read, accent- and
plural-insensitive like the rest of the parser. Whether the message also holds a red flag is
the caller's business, read first: a red flag is never "normal".
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.parsing.negation import PRE_NEGATORS, negated_before
from bot.domain.parsing.tokens import phrase_words, tokenize
from bot.domain.protocol import Education, LocalizedPhrases

_NEGATION_WINDOW = 2
# Compiled phrase tables, keyed by the section's identity (it is frozen); a reference is kept
# so an id cannot be reused while its entry lives.
_COMPILED: dict[
    int, tuple[Education, tuple[tuple[str, ...], ...], dict[str, tuple[tuple[str, ...], ...]]]
] = {}
_COMPILED_MAX = 16


def _phrases(phrases: LocalizedPhrases) -> tuple[tuple[str, ...], ...]:
    return tuple({words for words in map(phrase_words, phrases.all()) if words})


def _compiled(
    education: Education,
) -> tuple[tuple[tuple[str, ...], ...], dict[str, tuple[tuple[str, ...], ...]]]:
    entry = _COMPILED.get(id(education))
    if entry is not None and entry[0] is education:
        return entry[1], entry[2]
    asking = _phrases(education.asking)
    topics = {topic_id: _phrases(topic.keywords) for topic_id, topic in education.topics.items()}
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[id(education)] = (education, asking, topics)
    return asking, topics


def _starts(words: list[str], phrases: Iterable[tuple[str, ...]]) -> list[int]:
    """Where any of ``phrases`` occurs in ``words``."""
    found = []
    for phrase in phrases:
        size = len(phrase)
        found += [i for i in range(len(words) - size + 1) if tuple(words[i : i + size]) == phrase]
    return found


def asked_topics(text: str, education: Education | None) -> tuple[str, ...]:
    """The education topics ``text`` asks about, in the protocol's order; () when it asks
    nothing, or about nothing the protocol explains. Never raises."""
    if education is None or not text:
        return ()
    try:
        asking, topics = _compiled(education)
        tokens = tokenize(text)
        if not tokens.questions and not _starts(tokens.words, asking):
            return ()
        return tuple(
            topic_id
            for topic_id, phrases in topics.items()
            if any(
                not negated_before(tokens, start, PRE_NEGATORS, _NEGATION_WINDOW)
                for start in _starts(tokens.words, phrases)
            )
        )
    except Exception:
        return ()
