"""Stemmed words with the clause and sentence each belongs to.

Negations and hedges only reach within their clause or sentence, so the tokenizer records both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.domain.parsing.normalise import expand_contractions, stem, to_ascii
from bot.domain.parsing.vocabulary import every

# Tokens: numbers (with a decimal part), words, and punctuation that ends a sentence or clause.
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)?|[a-z]+|[.!?;\n]|[,()\[\]/]")
_SENTENCE_END = frozenset(".!?;\n")
_CLAUSE_END = frozenset(",()[]/")
_CONJUNCTIONS = frozenset(stem(w) for w in every(lambda words: words.clauses.conjunctions))


@dataclass
class Tokens:
    """Word tokens of a text with the clause and sentence each belongs to."""

    words: list[str] = field(default_factory=list)
    clause: list[int] = field(default_factory=list)
    sentence: list[int] = field(default_factory=list)
    questions: set[int] = field(default_factory=set)  # sentences ending with "?"
    # Like ``clause``, but "et"/"and"/"ou"/"or" do not split: "genou énorme et brûlant" is one
    # description (used to find a flag's key words in any order; see _loose_matches).
    chunk: list[int] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # the words before stemming


# Conjunctions that join two parts of one description rather than two statements.
_JOINERS = frozenset(stem(w) for w in every(lambda words: words.clauses.joiners))


def tokenize(text: str) -> Tokens:
    """Split normalised text into stemmed words, clause ids and sentence ids."""
    tokens = Tokens()
    clause = sentence = chunk = 0
    for match in _TOKEN_RE.finditer(expand_contractions(to_ascii(text))):
        piece = match.group()
        if piece in _SENTENCE_END:
            if piece == "?":
                tokens.questions.add(sentence)
            sentence += 1
            clause += 1
            chunk += 1
            continue
        if piece in _CLAUSE_END:
            clause += 1
            chunk += 1
            continue
        word = stem(piece)
        if word in _CONJUNCTIONS:
            clause += 1
            if word not in _JOINERS:
                chunk += 1
        tokens.words.append(word)
        tokens.clause.append(clause)
        tokens.sentence.append(sentence)
        tokens.chunk.append(chunk)
        tokens.raw.append(piece)
    return tokens


def phrase_words(phrase: str) -> tuple[str, ...]:
    """A phrase as the tuple of stemmed words the text is matched against."""
    return tuple(tokenize(phrase).words)
