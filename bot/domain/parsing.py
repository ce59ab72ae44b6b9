"""Understand what a patient typed: pain scores, yes/no, choices, red flags in free text.

Pure functions: no I/O, no Telegram, no database. Patients are often 60-80 years old, typing on
a phone, in French or English, so everything here is accent-insensitive (unidecode), tolerant of
small typos (rapidfuzz) and reads number words with text2num's ``alpha2digit``.

Two rules override everything else:

* **Never guess.** A scale answer is only a number the patient actually wrote (digits or number
  words). When two unrelated numbers are present (a date, a past value) and no ``x/10`` or
  ``x sur 10`` pattern says which one is the score, the answer is ``unclear`` and the bot re-asks
  with buttons. A choice is never picked by position.
* **Never miss silently.** Red-flag phrases are matched in every language of the protocol; a
  typo, a hedge ("peut-être", "I think") or a question ("normal ?") makes the mention
  ``doubtful`` (the bot then asks the matching yes/no question) rather than dropping it. Only an
  explicit negation ("pas de fièvre", "no pus", "fièvre non"), a measured normal temperature
  ("temp 37.5") or a bare body part said to be fine ("le mollet va bien") removes a mention.

Work is capped: only the first :data:`MAX_CHARS` characters of a message are read. Every public
function catches its own errors: a parser never breaks a conversation (``unclear`` or ``[]``).

Known limits (the bot re-asks with buttons, or asks the flag's yes/no question):

* scale: a number implied but not written ("no pain", "aucune douleur") is unclear; so are two
  scores without ``x/10`` ("hier 8, aujourd'hui 5"), dates next to a score ("le 12/03 j'avais
  4"), fractions ("6 1/2"), "X et Y" without "entre"/"between", comparisons ("moins de 3");
* yes/no: only explicit answers; "pas de fièvre" to "Avez-vous de la fièvre ?" is unclear here
  (the caller's free-text scan reads the negation); "pas vraiment" / "not really" are unclear;
* choice: comparisons with yesterday ("beaucoup moins qu'hier") are unclear;
* red flags: negation is read from a few words before a phrase in the same clause; long-range
  or double negations, irony, and symptoms described in words absent from the protocol's
  phrase lists are not understood (phrases do stretch: verb forms "giving"/"gave", up to three
  filler words such as "tout", "very", "has turned", a two-word phrase in either order, and a
  phrase's key words in any order within a clause as a doubtful mention). French "plus de
  fièvre" (no more / more fever) counts as a negation only after "n'"/"ne", but "ne" is
  optional when matching phrases, so "je peux plus marcher" = "je ne peux plus marcher". Past
  events read as present ("I had a fall two years ago", "my knee used to give way"). A typo on
  a word shorter than 6 letters is not corrected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from text_to_num import alpha2digit
from unidecode import unidecode

from bot.domain.protocol import Option, Question, RedFlag

__all__ = [
    "MAX_CHARS",
    "FlagMention",
    "Parsed",
    "parse_choice",
    "parse_question",
    "parse_scale",
    "parse_yes_no",
    "read_temperature",
    "scan_red_flags",
]

#: Only this many characters of a message are parsed (a pasted novel cannot slow the bot down;
#: a red flag on line 40 of a long message is the staff's job when they read the note).
MAX_CHARS = 2000


@dataclass(frozen=True)
class Parsed:
    """What an answer meant.

    ``value``: the scale value; the option value of a choice; 1/0 for yes/no.
    ``option_id``: the choice option id; ``"yes"``/``"no"`` for yes/no.
    ``flags``: the red flags this answer reports (yes to a flagged yes/no, an option with a
    flag, checklist items read in the text).
    """

    status: Literal["ok", "unclear", "skip"]
    value: int | None = None
    option_id: str | None = None
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FlagMention:
    """A red flag read in free text; ``doubtful`` means: ask the flag's yes/no question."""

    flag: str
    certainty: Literal["certain", "doubtful"]
    temperature: float | None = None


UNCLEAR = Parsed("unclear")
SKIP = Parsed("skip")


# --------------------------------------------------------------------------------------------
# Normalisation shared by every parser
# --------------------------------------------------------------------------------------------

_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\bcan'?t\b", "can not"),
        (r"\bcannot\b", "can not"),
        (r"\bwon'?t\b", "will not"),
        (r"\b(\w+)n't\b", r"\1 not"),
        # apostrophe-less forms typed on phones ("dont" is left alone: it is a French word)
        (
            r"\b(does|did|is|are|was|were|has|have|had|could|would|should|must)nt\b",
            r"\1 not",
        ),
    )
)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _transliterate(match: re.Match[str]) -> str:
    return str(unidecode(match.group()))


def _ascii(text: str) -> str:
    """Cap, transliterate to lower-case ASCII (accents, curly quotes, odd digits), never raise."""
    return _ascii_capped(text[:MAX_CHARS])


@lru_cache(maxsize=256)
def _ascii_capped(text: str) -> str:
    return _NON_ASCII.sub(_transliterate, text.replace("°", " deg ")).lower()


def _expand_contractions(text: str) -> str:
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=8192)
def _stem(token: str) -> str:
    """A crude, symmetric stem: plural s/x and French feminine/past-participle e dropped.

    Applied to the text and to every phrase alike, so "gonflée"/"gonflés"/"gonflé"/"gonfle" and
    "cloques"/"cloque" meet. Numbers are left as they are.
    """
    if token[:1].isdigit():
        return token
    if (len(token) > 3 and token.endswith("s")) or (len(token) > 4 and token.endswith("x")):
        token = token[:-1]
    while len(token) > 4 and token.endswith("e"):
        token = token[:-1]
    return token


# Tokens: numbers (with a decimal part), words, and punctuation that ends a sentence or clause.
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)?|[a-z]+|[.!?;\n]|[,()\[\]/]")
_SENTENCE_END = frozenset(".!?;\n")
_CLAUSE_END = frozenset(",()[]/")
_CONJUNCTIONS = frozenset(
    _stem(w)
    for w in (
        "mais",
        "but",
        "et",
        "and",
        "however",
        "cependant",
        "pourtant",
        "sauf",
        "except",
        "although",
        "though",
        "whereas",
        "tandis",
        "puis",
        "then",
    )
)


@dataclass
class _Tokens:
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
_JOINERS = frozenset(_stem(w) for w in ("et", "and", "ou", "or"))


def _tokenize(text: str) -> _Tokens:
    """Split normalised text into stemmed words, clause ids and sentence ids."""
    tokens = _Tokens()
    clause = sentence = chunk = 0
    for match in _TOKEN_RE.finditer(_expand_contractions(_ascii(text))):
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
        word = _stem(piece)
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


def _words(phrase: str) -> tuple[str, ...]:
    """A phrase as the tuple of stemmed words the text is matched against."""
    return tuple(_tokenize(phrase).words)


def _collapse(word: str) -> str:
    """Repeated letters squeezed: "nonn" -> "non", "ouiii" -> "oui", "yesss" -> "yes"."""
    return re.sub(r"(.)\1+", r"\1", word)


# --------------------------------------------------------------------------------------------
# Scale (0-10 pain and the like)
# --------------------------------------------------------------------------------------------

# alpha2digit leaves 0, 1 and 2 alone when isolated ("un peu" must stay words); these are
# handled here, with "un/une/one" accepted only where it cannot be an article.
_LONE_O = re.compile(r"\bo\b")
_DENOMINATOR_BEFORE = re.compile(r"(?:/|\bsur|\bout of|\bover)\s*$")
_ZERO_TWO = re.compile(r"\b(?:zero|deux|two)\b")
_ONE_ALONE = re.compile(r"^\W*(?:un|une|one)\W*$")
_ONE_BEFORE = re.compile(r"\b(?:un|une|one)\b(?=\s*(?:/|sur\b|out of\b|ou\b|or\b|-|to\b)\s*\d)")
_ONE_AFTER = re.compile(
    r"\b(a|dirais|say|about|environ|around|vers)\s+(?:un|une|one)\b(?=\s*(?:[.!,;]|$))"
)
_HYPHENATED_WORDS = re.compile(r"\b([a-z]+)-([a-z]+)\b")
_NUMBER_RE = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)?(?![\d])")
_UNIT_AFTER = re.compile(
    # with or without a space: "2 jours", "500mg", "38 deg" (the ° sign), "3 fois"
    r"^\s*(?:heures?|hours?|hrs?|mn|min|minutes?|jours?|days?|nuits?|nights?|semaines?|sem"
    r"|weeks?|wks?|mois|months?|ans?|annees?|years?|yrs?|fois|times?|mg|kg|ml|cl|km|cm|mm"
    r"|deg|degres?|degrees?|pm|am|comprimes?|cachets?|pills?|tablets?|eme|ieme|er|ere)\b"
    # attached only: "10h", "4e", "2nd", "38c", "3j", "5x", "30%", "10:30"
    r"|^(?:h|e|nd|rd|st|th|c|f|j|x|g|m)\b|^\s*%|^:\d"
)
_UNIT_BEFORE = re.compile(r"(?:\b(?:day|jour|j|d|semaine|week)\s*|[h:+])$")
_COMPARATOR_BEFORE = re.compile(
    r"(?:\b(?:moins de|less than|under|below|plus de|more than|above|at least|au moins"
    r"|au dessus de|en dessous de|superieur a|inferieur a)\s*|[<>]\s*)$"
)
_DENOMINATOR = re.compile(r"^\s*(?:/|sur\b|out of\b|over\b|on\b)\s*(\d+)(?![\d.,])")
_RANGE_LINK = re.compile(r"^\s*(?:-+|a|to|ou|or)\s*$")
_BETWEEN_LINK = re.compile(r"^\s*(?:et|and)\s*$")
_BETWEEN_BEFORE = re.compile(r"\b(?:entre|between|from|de)\s*$")


def _number_text(text: str) -> str:
    """Lower-case ASCII text with number words turned into digits (French then English)."""
    text = _ascii(text)
    text = _HYPHENATED_WORDS.sub(
        lambda m: m.group(0) if not _is_number_word_pair(m) else f"{m.group(1)} - {m.group(2)}",
        text,
    )
    # text2num reads a lone "o" as "oh" (zero, as in "o o seven"): "O O" would become "00", a
    # number the patient never gave. Shield it.
    text = _LONE_O.sub("~", text)
    for language in ("fr", "en"):
        try:
            text = alpha2digit(text, language)
        except Exception:  # noqa: S112 — a library hiccup must not lose the answer
            continue
    text = _ZERO_TWO.sub(lambda m: "0" if m.group(0) == "zero" else "2", text)
    if _ONE_ALONE.match(text):
        return "1"
    text = _ONE_BEFORE.sub("1", text)
    return _ONE_AFTER.sub(r"\1 1", text)


def _is_number_word_pair(match: re.Match[str]) -> bool:
    """True for "six-sept" (a range) but not "dix-sept" (17, read whole by alpha2digit)."""
    whole = match.group(0)
    for language in ("fr", "en"):
        try:
            if alpha2digit(whole, language) != whole:
                return False
        except Exception:  # noqa: S112
            continue
    converted = [_safe_a2d(part) for part in (match.group(1), match.group(2))]
    return all(part.isdigit() for part in converted)


def _safe_a2d(word: str) -> str:
    for language in ("fr", "en"):
        try:
            converted = str(alpha2digit(word, language))
        except Exception:  # noqa: S112
            continue
        if converted != word:
            return converted
    return {"zero": "0", "un": "1", "une": "1", "one": "1", "deux": "2", "two": "2"}.get(word, word)


def _round_half_up(number: str) -> int | None:
    try:
        return int(Decimal(number.replace(",", ".")).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        return None


@dataclass
class _Number:
    start: int
    end: int
    text: str
    value: int | None
    negative: bool
    excluded: (
        bool  # a unit, an ordinal, a time, a day number, a date, a denominator: never the score
    )
    comparator: bool
    unit: bool = False  # excluded because of a unit, which also applies to a range's first end


# Dates are never scores: "10/10/2026", "12.03.26", "le 12/03", "on 10/10".
_DATE_SPAN = re.compile(
    r"\b\d{1,2}([/.-])\d{1,2}\1\d{2,4}\b"  # one separator: "6-7/10" is a range
    r"|\b(?:le|du|au|depuis|on|since|the)\s+\d{1,2}[/.]\d{1,2}\b"
)


def _numbers(text: str) -> list[_Number]:
    numbers: list[_Number] = []
    dates = [(m.start(), m.end()) for m in _DATE_SPAN.finditer(text)]
    for match in _NUMBER_RE.finditer(text):
        before, after = text[: match.start()], text[match.end() :]
        in_date = any(start <= match.start() < end for start, end in dates)
        # "/10", "sur 10", "out of 10" name the scale, never the score ("o/10" is not 10).
        denominator = bool(_DENOMINATOR_BEFORE.search(before))
        has_unit = bool(_UNIT_AFTER.match(after) or _UNIT_BEFORE.search(before))
        # "-3" is negative; "6-7", "6 - 7" and "6--7" are ranges
        negative = (
            before.endswith("-") and not before.rstrip("-").rstrip()[-1:].isdigit()
        ) or bool(re.search(r"\b(?:moins|minus)\s*$", before))
        numbers.append(
            _Number(
                start=match.start(),
                end=match.end(),
                text=match.group(),
                value=_round_half_up(match.group()),
                negative=negative,
                excluded=in_date or denominator or has_unit,
                comparator=bool(_COMPARATOR_BEFORE.search(before)),
                unit=has_unit,
            )
        )
    # "2-3 jours", "entre 2 et 3 jours": the unit after a range applies to both ends
    for first, second in zip(numbers[-2::-1], numbers[:0:-1], strict=True):
        link = text[first.end : second.start]
        if second.unit and (_RANGE_LINK.match(link) or _BETWEEN_LINK.match(link)):
            first.excluded = True
    return numbers


def _scale_value(values: Iterable[int | None], minimum: int, maximum: int) -> Parsed:
    distinct = set(values)
    if len(distinct) != 1:
        return UNCLEAR
    (value,) = distinct
    if value is None or not minimum <= value <= maximum:
        return UNCLEAR
    return Parsed("ok", value=value)


def parse_scale(text: str, *, minimum: int = 0, maximum: int = 10) -> Parsed:
    """A score the patient wrote: "7", "sept", "7/10", "6-7" (-> 7), "6.5" (-> 7).

    Ranges ("6-7", "6 ou 7", "between 6 and 7") take the higher value; decimals round half up.
    Out of range, negative, a comparison ("moins de 3"), no number, or two unrelated numbers
    without an ``x/10`` / ``x sur 10`` pattern -> ``unclear``. Numbers with a unit ("2 jours",
    "10h", "500 mg", "38°") or an ordinal ("2e jour") are never taken as the score.
    """
    try:
        return _parse_scale(text, minimum, maximum)
    except Exception:
        return UNCLEAR


def _parse_scale(text: str, minimum: int, maximum: int) -> Parsed:
    converted = _number_text(text)
    numbers = _numbers(converted)
    if not numbers:
        return UNCLEAR

    # 1. "x/10", "x sur 10", "x out of 10" (denominator = the scale maximum) wins over the rest.
    scored: list[int | None] = []
    for index, number in enumerate(numbers):
        found = _DENOMINATOR.match(converted[number.end :])
        if found is None or int(found.group(1)) != maximum or number.excluded:
            continue
        if number.negative or number.comparator:
            return UNCLEAR
        value = number.value
        previous = numbers[index - 1] if index else None
        if (
            previous is not None
            and value is not None
            and previous.value is not None
            and _RANGE_LINK.match(converted[previous.end : number.start])
        ):
            value = max(value, previous.value)  # "6-7/10"
        scored.append(value)
    if scored:
        return _scale_value(scored, minimum, maximum)
    if _DATE_SPAN.search(converted):
        return UNCLEAR  # a date beside a number: which day is it about? Ask again.

    # 2. Otherwise every number counts; a range counts once, as its higher value.
    candidates = [n for n in numbers if not n.excluded]
    if any(n.negative or n.comparator for n in candidates):
        return UNCLEAR
    values: list[int | None] = []
    index = 0
    while index < len(candidates):
        number = candidates[index]
        following = candidates[index + 1] if index + 1 < len(candidates) else None
        if following is not None:
            link = converted[number.end : following.start]
            if _RANGE_LINK.match(link) or (
                _BETWEEN_LINK.match(link) and _BETWEEN_BEFORE.search(converted[: number.start])
            ):
                if number.value is None or following.value is None:
                    return UNCLEAR
                values.append(max(number.value, following.value))
                index += 2
                continue
        values.append(number.value)
        index += 1
    return _scale_value(values, minimum, maximum)


# --------------------------------------------------------------------------------------------
# Yes / no
# --------------------------------------------------------------------------------------------

_YES_WORDS = frozenset(
    _collapse(w)
    for w in (
        "oui",
        "ouais",
        "ouai",
        "ouaip",
        "ouep",
        "ui",
        "yes",
        "yep",
        "yeah",
        "yup",
        "yea",
        "ye",
        "exact",
        "exactement",
        "absolument",
        "affirmatif",
        "certainement",
        "evidemment",
        "effectivement",
        "sure",
        "correct",
        "indeed",
        "definitely",
        "certainly",
        "oki",
    )
)
_NO_WORDS = frozenset(
    _collapse(w) for w in ("non", "nan", "no", "nope", "nop", "nah", "negatif", "nein", "na")
)
_SINGLE_YES = frozenset({"y", "o"})
_SINGLE_NO = frozenset({"n"})
_YES_PHRASES = (
    "bien sur",
    "tout a fait",
    "of course",
    "c est ca",
    "c est exact",
    "c est vrai",
    "en effet",
    "je confirme",
    "i think so",
    "je crois que oui",
    "je pense que oui",
    "that s right",
    "it is",
    "i do",
)
_NO_PHRASES = (
    "pas du tout",
    "absolument pas",
    "not at all",
    "no thanks",
    "no thank you",
    "non merci",
    "je ne pense pas",
    "je pense pas",
    "je ne crois pas",
    "je crois pas",
    "i do not think so",
    "do not think so",
    "certainement pas",
    "surement pas",
    "bien sur que non",
    "of course not",
    "definitely not",
    "i do not",
    "it is not",
)
# Answers that say "I don't know": always unclear, even if "no" is in them ("no idea").
_UNSURE_PHRASES = (
    "no idea",
    "not sure",
    "pas sur",
    "pas certain",
    "pas certaine",
    "sais pas",
    "do not know",
    "dunno",
    "maybe",
    "peut etre",
    "perhaps",
    "not really",
    "pas vraiment",
    "plus ou moins",
    "more or less",
    "oui et non",
    "yes and no",
    "i guess",
)
# Real words one typo away from yes/no that must not be read as an answer.
_NOT_TYPOS = frozenset({"yet", "you", "yen", "out", "our", "oil", "nos", "not", "nov", "ne"})


def _phrase_tokens(phrases: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        sorted(
            (tuple(_collapse(w) for w in p.split()) for p in phrases),
            key=len,
            reverse=True,
        )
    )


_YES_SEQ = _phrase_tokens(_YES_PHRASES)
_NO_SEQ = _phrase_tokens(_NO_PHRASES)
_UNSURE_SEQ = _phrase_tokens(_UNSURE_PHRASES)
_FUZZY_YES_NO = sorted(w for w in _YES_WORDS | _NO_WORDS if len(w) >= 3)


def _plain_words(text: str) -> list[str]:
    """Unstemmed, letter-collapsed words (yes/no vocabulary is tiny and stemming would blur it)."""
    return [_collapse(w) for w in re.findall(r"[a-z0-9]+", _expand_contractions(_ascii(text)))]


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
    words = _plain_words(text)
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
        if word in _YES_WORDS or (word == "si" and index == 0):
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


# --------------------------------------------------------------------------------------------
# Choice
# --------------------------------------------------------------------------------------------

_CHOICE_NEGATORS = frozenset(
    _stem(w) for w in ("pas", "not", "no", "ni", "sans", "without", "never", "jamais")
)
# "beaucoup moins gonflé" is not "beaucoup": a level followed by a comparative is a change.
_COMPARATIVES = frozenset(
    _stem(w) for w in ("moins", "less", "plus", "more", "mieux", "better", "pire", "worse")
)
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
                words = _words(text)
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


def _negated_before(tokens: _Tokens, start: int, negators: frozenset[str], window: int) -> bool:
    for i in range(start - 1, max(-1, start - window - 1), -1):
        if tokens.clause[i] != tokens.clause[start]:
            return False
        if tokens.words[i] in negators:
            return True
    return False


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
_DONT_KNOW = re.compile(
    r"\b(?:no idea|(?:i )?(?:don'?t|do not) know|not sure|dunno|aucune idee|"
    r"(?:je )?(?:ne )?sais pas|j'?sais pas|chais pas|sais plus|pas sur|pas certaine?)\b"
)


def _parse_choice(text: str, options: Sequence[Option], language: str) -> Parsed:
    if not options or _DONT_KNOW.search(_ascii(text)):
        return UNCLEAR
    tokens = _tokenize(text)
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
                and _negated_before(tokens, start, _CHOICE_NEGATORS, 2)
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
                if _negated_before(tokens, start, _CHOICE_NEGATORS, 2):
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


# --------------------------------------------------------------------------------------------
# Temperature
# --------------------------------------------------------------------------------------------

_TEMPERATURE_RE = re.compile(
    r"(?<![\d.,])(?P<int>\d{2,3})(?:(?:[.,]|\s*deg\s*)(?P<dec>\d{1,2})(?![\d.,]))?"
    r"(?![\d.,]|\s*(?:/|sur\b|out of\b))"
    r"(?P<half>\s*(?:et demi|and a half))?"
    r"(?P<unit>\s*deg(?:re|ree)?s?\b(?:\s*[cf]\b)?|\s*(?:celsius|fahrenheit)\b|c\b|\s*f\b)?"
)
_FEVER_CONTEXT = re.compile(
    r"\b(?:fievre|fievreu\w*|fever\w*|temp|temperatures?|thermomet\w*|febrile|degres?"
    r"|degrees?|deg)\b"
)
_NUMBER_WORD_HINT = re.compile(r"trente|quarante|thirty|forty|hundred|cent\b")


def read_temperature(text: str) -> float | None:
    """The highest body temperature (°C) the text reports, or None.

    "39 de fièvre", "fièvre 38,2", "38.5°", "38°5", "temp 37.5", "101 F" (converted). A number
    counts when 35 <= t <= 42 °C and it has a decimal part, a degree sign/unit, or a
    fever/temperature word in the same sentence; "39" alone is not a temperature.
    """
    try:
        return _read_temperature(text)
    except Exception:
        return None


def _read_temperature(text: str) -> float | None:
    normalized = _ascii(text)
    if _NUMBER_WORD_HINT.search(normalized):
        for language in ("fr", "en"):
            try:
                normalized = alpha2digit(normalized, language)
            except Exception:  # noqa: S112
                continue
    best: float | None = None
    for match in _TEMPERATURE_RE.finditer(normalized):
        value = float(match.group("int"))
        decimal = match.group("dec")
        if decimal:
            value += float(f"0.{decimal}")
        if match.group("half") and not decimal:
            value += 0.5
        unit = (match.group("unit") or "").strip()
        fahrenheit = unit.endswith("f") or unit == "fahrenheit"
        if fahrenheit:
            value = (value - 32) * 5 / 9
        sentence = _sentence_around(normalized, match.start(), match.end())
        has_context = bool(decimal or match.group("half") or unit) or bool(
            _FEVER_CONTEXT.search(sentence)
        )
        if has_context and 35.0 <= value <= 42.0:
            value = round(value, 1)
            best = value if best is None else max(best, value)
    return best


def _sentence_around(text: str, start: int, end: int) -> str:
    left = max(text.rfind(c, 0, start) for c in ".!?;\n")
    rights = [i for i in (text.find(c, end) for c in "!?;\n") if i != -1]
    # a "." right after the number may be a decimal point already consumed; look for ". "
    dot = text.find(". ", end)
    if dot != -1:
        rights.append(dot)
    right = min(rights) if rights else len(text)
    return text[left + 1 : right]


# --------------------------------------------------------------------------------------------
# Red flags in free text
# --------------------------------------------------------------------------------------------


def _stemmed_set(words: Iterable[str]) -> frozenset[str]:
    return frozenset(_stem(w) for w in words)


# Words that negate a symptom named just after them ("pas de fièvre", "no pus", "sans fièvre").
_PRE_NEGATORS = _stemmed_set(
    (
        "pas",
        "no",
        "not",
        "sans",
        "without",
        "ni",
        "nor",
        "neither",
        "aucun",
        "aucune",
        "never",
        "jamais",
        "none",
        "zero",
    )
)
# Words that negate a symptom named just before them when they end the clause ("fièvre non").
_POST_NEGATORS = _stemmed_set(("non", "no", "pas", "nope", "nan", "aucun", "none", "negatif"))
# Any of these shortly after a symptom makes it doubtful ("le mollet n'est pas dur").
_POST_DOUBT = _stemmed_set(("ne", "n", "pas", "not", "non", "no", "plus", "jamais", "never"))
# A symptom said to be fading is worth a question, not an alarm ("la rougeur diminue").
_IMPROVING = _stemmed_set(
    (
        "diminue",
        "diminuer",
        "moins",
        "mieux",
        "less",
        "better",
        "disparu",
        "gone",
        "parti",
        "partie",
        "estompe",
        "fading",
        "reduit",
        "reduced",
        "smaller",
        "decreasing",
        "improving",
        "settled",
        "passe",
    )
)
_NEGATION_WINDOW = 4
_POST_WINDOW = 3
# Degree hedges apply to their clause; epistemic hedges to the whole sentence.
_LOCAL_HEDGES = (
    "un peu",
    "un petit peu",
    "legerement",
    "a bit",
    "a little",
    "slightly",
    "kind of",
    "sort of",
    "somewhat",
    "un poil",
    "hardly",
    "barely",
    "scarcely",
    "a peine",
)
_SENTENCE_HEDGES = (
    "peut etre",
    "peutetre",
    "maybe",
    "perhaps",
    "possibly",
    "probably",
    "probablement",
    "possible",
    "je crois",
    "je pense",
    "i think",
    "i guess",
    "i believe",
    "il me semble",
    "on dirait",
    "j ai l impression",
    "seems",
    "semble",
    "not sure",
    "pas sur",
    "pas certain",
    "sais pas",
    "do not know",
    "unsure",
    "normal",
    "normale",
    "est ce",
    "is it",
    "is this",
    "should i",
    "dois je",
    "faut il",
)
# A bare body part, measurement or worry is a topic, not a symptom: doubtful ("mon mollet va
# bien", "la fièvre est tombée", "peur d'une infection"). Longer phrases around them stay certain.
_TOPIC_WORDS = _stemmed_set(
    (
        "mollet",
        "calf",
        "temperature",
        "jambe",
        "leg",
        "genou",
        "knee",
        "tombe",
        "chute",
        "infection",
        "infecte",
        "infected",
    )
)
# "le mollet va bien", "my calf feels fine": a bare topic said to be fine is not a mention.
_REASSURING = _stemmed_set(("bien", "fine", "ok", "okay", "good", "great", "nickel", "parfait"))
# A phrase made only of degree words ("much worse", "bien pire") says how much, not what: asking
# is enough.
_DEGREE_WORDS = _stemmed_set(
    (
        "much",
        "bien",
        "worse",
        "pire",
        "beaucoup",
        "very",
        "tres",
        "lot",
        "far",
        "really",
        "vraiment",
    )
)
# Skipped when matching phrases, in the text and in the phrases alike, so "calf is swollen" =
# "calf swollen", "la peau est toute blanche" = "peau toute blanche", "pain in my calf" = "pain in
# the calf". French "ne" is optional in speech: "je peux pas marcher" = "je ne peux pas marcher".
# Negations, hedges and clauses are still read on the full text.
_SKIPPABLE = _stemmed_set(
    (
        "is",
        "are",
        "am",
        "was",
        "were",
        "been",
        "est",
        "sont",
        "etait",
        "etaient",
        "the",
        "a",
        "an",
        "my",
        "his",
        "her",
        "le",
        "la",
        "les",
        "l",
        "un",
        "une",
        "mon",
        "ma",
        "mes",
        "son",
        "sa",
        "ses",
        "ne",
        "n",
    )
)
# Phrases with one of these words report fever; a measured normal temperature cancels them.
_FEVER_WORDS = _stemmed_set(
    ("fievre", "fever", "feverish", "temperature", "febrile", "fievreux", "fievreuse")
)


# --------------------------------------------------------------------------------------------
# Lemma-like words, used only to match red-flag phrases
# --------------------------------------------------------------------------------------------
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
_BARELY = _stem("barely")
_BARELY_WORDS = frozenset(_stem(w) for w in ("hardly", "barely", "scarcely"))
_PEINE = _stem("peine")
_CAN_WORDS = frozenset(_stem(w) for w in ("can", "could"))
_FR_CAN_WORDS = frozenset(
    _stem(w)
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
def _lemma(stem: str) -> str:
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


def _lemmas(stems: Sequence[str]) -> list[str]:
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
            lemmas.append(_lemma(word))
    return lemmas


def _lemma_set(words: Iterable[str]) -> frozenset[str]:
    return frozenset(_lemma(_stem(w)) for w in words)


# Words that may sit between the words of a phrase without changing what it says: intensifiers,
# auxiliaries, linking verbs, object pronouns ("le genou est TOUT rouge et chaud", "the skin HAS
# TURNED grey", "my knee KEEPS giving way", "I can't put ANY weight", "le genou ME lâche").
# At most _MAX_FILLERS of them, in the clause of the phrase; a negation is never one of them.
_FILLERS = _lemma_set(
    (
        # English
        "very",
        "really",
        "so",
        "too",
        "all",
        "completely",
        "totally",
        "quite",
        "pretty",
        "still",
        "keep",
        "keeps",
        "kept",
        "just",
        "now",
        "any",
        "has",
        "have",
        "had",
        "having",
        "got",
        "get",
        "gets",
        "getting",
        "become",
        "becomes",
        "became",
        "turned",
        "turning",
        "turns",
        "gone",
        "went",
        "look",
        "looks",
        "looked",
        "looking",
        "feel",
        "feels",
        "felt",
        "feeling",
        "suddenly",
        "badly",
        "absolutely",
        "literally",
        "extremely",
        "also",
        "again",
        "already",
        "much",
        "lot",
        "far",
        "always",
        "constantly",
        # French
        "tout",
        "toute",
        "tous",
        "toutes",
        "tres",
        "trop",
        "vraiment",
        "completement",
        "totalement",
        "super",
        "hyper",
        "carrement",
        "encore",
        "toujours",
        "deja",
        "maintenant",
        "soudain",
        "soudainement",
        "brutalement",
        "subitement",
        "tellement",
        "si",
        "bien",
        "beaucoup",
        "me",
        "m",
        "se",
        "s",
        "te",
        "lui",
        "y",
        "ai",
        "avait",
        "avais",
        "eu",
        "devenu",
        "devenue",
        "devenus",
        "devenues",
        "devient",
        "deviennent",
        "parait",
        "reste",
        "qui",
    )
)
_MAX_FILLERS = 3
# Not key words of a phrase (grammar, pronouns, degree): a phrase's key words are the rest.
_NOT_KEYS = (
    _lemma_set(
        (
            "de",
            "du",
            "des",
            "d",
            "a",
            "au",
            "aux",
            "en",
            "dans",
            "sur",
            "sous",
            "par",
            "pour",
            "avec",
            "vers",
            "chez",
            "jusqu",
            "jusque",
            "travers",
            "que",
            "qu",
            "quoi",
            "je",
            "j",
            "tu",
            "il",
            "elle",
            "on",
            "nous",
            "vous",
            "ils",
            "elles",
            "ce",
            "c",
            "ca",
            "cela",
            "moi",
            "toi",
            "leur",
            "suis",
            "es",
            "etre",
            "fait",
            "fais",
            "of",
            "in",
            "on",
            "at",
            "to",
            "from",
            "with",
            "through",
            "by",
            "for",
            "into",
            "onto",
            "over",
            "under",
            "up",
            "down",
            "out",
            "off",
            "around",
            "about",
            "i",
            "you",
            "he",
            "she",
            "it",
            "we",
            "they",
            "him",
            "them",
            "this",
            "that",
            "there",
            "here",
            "its",
            "and",
            "or",
            "et",
            "ou",
            "as",
            "like",
            "comme",
            "be",
            "do",
            "does",
            "did",
            "will",
            "would",
            "can",
            "could",
            "should",
            "must",
            "may",
            "might",
            "make",
            "makes",
            "side",
            "cote",
        )
    )
    | _FILLERS
    | frozenset(_lemma(w) for w in _SKIPPABLE)
    | frozenset(_lemma(w) for w in _DEGREE_WORDS)
)
# A phrase with one of these is only read in its own word order: negations ("can't walk"),
# comparisons and times ("worse than before", "pire qu'avant", "plus gonflé qu'hier").
_ORDERED = _lemma_set(
    (
        "not",
        "no",
        "pas",
        "ne",
        "n",
        "plus",
        "rien",
        "nothing",
        "never",
        "jamais",
        "sans",
        "without",
        "impossible",
        "unable",
        "none",
        "aucun",
        "aucune",
        "than",
        "que",
        "qu",
        "more",
        "less",
        "moins",
        "before",
        "avant",
        "after",
        "apres",
        "yesterday",
        "hier",
        "barely",
    )
)
# Key words of one phrase found in any order within this many words of one clause ("the skin
# where they froze it is grey" for "skin grey") make a doubtful mention: the bot asks.
_LOOSE_SPAN = 8


@dataclass(frozen=True)
class _FlagPhrase:
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
    phrase: _FlagPhrase
    words: tuple[str, ...]  # the phrase's words, or the two words of a pair reversed
    needed: frozenset[str]  # all of them: a quick test before reading the text word by word


@dataclass(frozen=True)
class _CompiledFlags:
    by_first: dict[str, tuple[_Pattern, ...]]
    by_key: dict[str, tuple[_FlagPhrase, ...]]
    vocabulary: frozenset[str]
    by_initial: dict[str, tuple[str, ...]]
    order: tuple[str, ...]
    fever_flags: frozenset[str]


@dataclass(frozen=True)
class _Hedges:
    ngrams: dict[tuple[str, ...], bool]  # True: sentence-wide
    prefixes: frozenset[tuple[str, ...]]


def _compile_hedges() -> _Hedges:
    ngrams: dict[tuple[str, ...], bool] = {}
    for phrase in _LOCAL_HEDGES:
        ngrams[_words(phrase)] = False
    for phrase in _SENTENCE_HEDGES:
        ngrams[_words(phrase)] = True
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


def _flag_phrase(flag: str, phrase: str) -> _FlagPhrase | None:
    stems = _words(phrase)
    pairs = [(s, w) for s, w in zip(stems, _lemmas(stems), strict=True) if s not in _SKIPPABLE]
    pairs = pairs or list(zip(stems, _lemmas(stems), strict=True))
    if not pairs:
        return None
    kept = tuple(s for s, _w in pairs)
    words = tuple(w for _s, w in pairs)
    keys = frozenset(w for w in words if w not in _NOT_KEYS and w.isalpha())
    if len(keys) < 2 or any(w in _ORDERED for w in words):
        keys = frozenset()
    return _FlagPhrase(
        flag,
        words,
        fever=any(s in _FEVER_WORDS for s in kept),
        topic=len(kept) == 1 and kept[0] in _TOPIC_WORDS,
        degree=all(s in _DEGREE_WORDS for s in kept),
        keys=keys,
        negative=kept[0] in _PRE_NEGATORS,
    )


def _compile_flags(red_flags: Mapping[str, RedFlag]) -> _CompiledFlags:
    by_first: dict[str, list[_Pattern]] = {}
    by_key: dict[str, list[_FlagPhrase]] = {}
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
    return _CompiledFlags(
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
_COMPILED: dict[int, tuple[Mapping[str, RedFlag], tuple[tuple[str, int], ...], _CompiledFlags]] = {}
_COMPILED_MAX = 16


def _compiled(red_flags: Mapping[str, RedFlag]) -> _CompiledFlags:
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
def _correct(word: str, candidates: tuple[str, ...]) -> str | None:
    """The phrase word one typo away (two for long words), same first letter; else None."""
    limit = 2 if len(word) >= 10 else 1
    found = process.extractOne(word, candidates, scorer=OSA.distance, score_cutoff=limit)
    if found is None:
        return None
    candidate = str(found[0])
    if limit == 1 and len(candidate) < 6:
        return None
    return candidate


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    phrase: _FlagPhrase
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
            if filler[j] and fillers < _MAX_FILLERS and clause[j] == clause[last]:
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
    tokens: _Tokens,
    compiled: _CompiledFlags,
    found: set[str],
    explained: Sequence[bool],
) -> list[_Match]:
    """Key words of a phrase in any order within one clause, no negation among them."""
    positions: dict[str, list[int]] = {}
    for i, word in enumerate(words):
        if not skip[i]:
            positions.setdefault(word, []).append(i)
    candidates: dict[int, _FlagPhrase] = {}
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
                    high - low < _LOOSE_SPAN
                    and not all(explained[q] for q in chosen)
                    and not _pre_negated(tokens, low, explained)
                    and not any(
                        _is_negator(tokens, i) or tokens.words[i] in _POST_DOUBT
                        for i in range(low, high + 1)
                    )
                ):
                    matches.append(_Match(low, high + 1, phrase, fuzzy=True, loose=True))
                    found.add(phrase.flag)
                    break
    return matches


def _scan(text: str, red_flags: Mapping[str, RedFlag], fever_threshold: float) -> list[FlagMention]:
    if not red_flags or not text:
        return []
    compiled = _compiled(red_flags)
    tokens = _tokenize(text)
    words = tokens.words
    count = len(words)
    lemmas = _lemmas(words)
    skip = [w in _SKIPPABLE for w in words]
    filler = [w in _FILLERS for w in lemmas]

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
            replacement = _correct(word, candidates)
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

    hedge_spans = _hedge_spans(words)
    for start, end, _wide in hedge_spans:
        for i in range(start, end):
            covered[i] = True  # "not sure", "je ne sais pas": not negations of a symptom

    # A negation before a phrase also covers the shorter phrases inside it ("pas de douleur
    # dans la poitrine ni de serrement dans la poitrine", "no blood soaking through").
    negated = {
        id(m) for m in matches if not m.phrase.negative and _pre_negated(tokens, m.start, covered)
    }
    outer = [m for m in matches if id(m) in negated and not m.loose]
    best: dict[str, Literal["certain", "doubtful"]] = {}
    for m in matches:
        if (
            id(m) in negated
            or _post_negated(tokens, m.end, covered)
            or any(o.start <= m.start and m.end <= o.end for o in outer)
        ):
            continue
        if m.phrase.topic and _reassured(tokens, m.start):
            continue
        doubtful = (
            m.fuzzy
            or id(m) in inner
            or m.phrase.topic
            or m.phrase.degree
            or _hedged(tokens, m, hedge_spans)
            or tokens.sentence[m.start] in tokens.questions
            or _post_doubt(tokens, m.end, covered)
            or _improving_near(tokens, m.start, m.end)
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


def _hedged(tokens: _Tokens, m: _Match, hedge_spans: list[tuple[int, int, bool]]) -> bool:
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


def _hedge_spans(words: list[str]) -> list[tuple[int, int, bool]]:
    spans = []
    for start, end, key in _find_ngrams(words, _HEDGES.prefixes):
        wide = _HEDGES.ngrams.get(key)
        if wide is not None:
            spans.append((start, end, wide))
    return spans


def _reassured(tokens: _Tokens, start: int) -> bool:
    """A reassuring word in the clause, not negated ("va bien", not "va pas bien")."""
    clause = tokens.clause[start]
    for i, word in enumerate(tokens.words):
        if (
            tokens.clause[i] == clause
            and word in _REASSURING
            and not (i > 0 and tokens.words[i - 1] in _PRE_NEGATORS)
        ):
            return True
    return False


def _is_negator(tokens: _Tokens, i: int) -> bool:
    word = tokens.words[i]
    if word == "pas" and i + 1 < len(tokens.words) and tokens.words[i + 1] == "mal":
        # "pas mal de fièvre" = quite a lot; "pas mal au mollet" = no pain in the calf
        return i + 2 < len(tokens.words) and tokens.words[i + 2] in ("a", "au", "aux")
    if word == "plu":  # "plus" stemmed: a negation only in "n'ai plus", "ne ... plus"
        return any(tokens.words[j] in ("n", "ne") for j in range(max(0, i - 2), i))
    return word in _PRE_NEGATORS


def _pre_negated(tokens: _Tokens, start: int, covered: Sequence[bool]) -> bool:
    clause = tokens.clause[start]
    for i in range(start - 1, max(-1, start - _NEGATION_WINDOW - 1), -1):
        if tokens.clause[i] != clause:
            return False
        if not covered[i] and _is_negator(tokens, i):
            return True
    return False


def _post_negated(tokens: _Tokens, end: int, covered: list[bool]) -> bool:
    """ "fièvre non" / "fever: no" closing its clause."""
    if end >= len(tokens.words) or covered[end]:
        return False
    if tokens.clause[end] != tokens.clause[end - 1] or tokens.words[end] not in _POST_NEGATORS:
        return False
    return end + 1 >= len(tokens.words) or tokens.clause[end + 1] != tokens.clause[end]


def _improving_near(tokens: _Tokens, start: int, end: int) -> bool:
    clause = tokens.clause[start]
    for i in (*range(max(0, start - 2), start), *range(end, min(len(tokens.words), end + 3))):
        # English "less" and the French article "les" share a stem: only the former counts
        if tokens.clause[i] == clause and tokens.words[i] in _IMPROVING and tokens.raw[i] != "les":
            return True
    return False


def _post_doubt(tokens: _Tokens, end: int, covered: list[bool]) -> bool:
    clause = tokens.clause[end - 1]
    for i in range(end, min(len(tokens.words), end + _POST_WINDOW)):
        if tokens.clause[i] != clause:
            return False
        if not covered[i] and tokens.words[i] in _POST_DOUBT:
            return True
    return False


# --------------------------------------------------------------------------------------------
# Dispatch by question type
# --------------------------------------------------------------------------------------------

_SKIP_PHRASES = frozenset(
    " ".join(_plain_words(p))
    for p in ("passer", "passe", "je passe", "skip", "pass", "suivant", "next", "/skip", "passez")
)
_POLITE_SKIP = frozenset(
    " ".join(_plain_words(p)) for p in ("non merci", "no thanks", "no thank you", "non merci bien")
)
_NOTHING_TO_ADD = frozenset(
    " ".join(_plain_words(p))
    for p in (
        "non",
        "no",
        "nope",
        "nan",
        "rien",
        "non rien",
        "rien a dire",
        "rien a ajouter",
        "rien a signaler",
        "ras",
        "r a s",
        "nothing",
        "nothing else",
        "nothing to add",
        "nothing to report",
        "no nothing",
        "c est tout",
        "that s all",
        "that is all",
    )
)
_CHECKLIST_NONE = tuple(
    " ".join(_plain_words(p))
    for p in (
        "aucun",
        "aucune",
        "aucun de ces signes",
        "aucun de ces signe",
        "aucun signe",
        "aucun symptome",
        "pas de signe",
        "pas de signes",
        "rien",
        "rien de tout ca",
        "rien de tout cela",
        "rien de ca",
        "rien de cela",
        "non rien",
        "non aucun",
        "non aucun signe",
        "rien a signaler",
        "ras",
        "r a s",
        "tout va bien",
        "none",
        "none of these",
        "none of them",
        "none of the above",
        "none of those",
        "nothing",
        "no signs",
        "no symptoms",
        "all good",
        "all fine",
        "non",
        "no",
        "nope",
        "nan",
    )
)
_CHECKLIST_FILLER = frozenset({"merci", "thank", "thanks", "you", "ok", "okay"})


def _plain(text: str) -> str:
    return " ".join(_plain_words(text))


def _is_checklist_none(text: str) -> bool:
    words = [w for w in _plain_words(text) if w not in _CHECKLIST_FILLER] or _plain_words(text)
    joined = " ".join(words)
    if not joined:
        return False
    if joined in _CHECKLIST_NONE:
        return True
    if len(joined) < 4:
        return False
    found = process.extractOne(
        joined, _CHECKLIST_NONE, scorer=fuzz.ratio, score_cutoff=85, processor=None
    )
    return found is not None


def parse_question(
    question: Question,
    text: str,
    *,
    language: str,
    red_flags: Mapping[str, RedFlag] | None = None,
    fever_threshold: float = 38.0,
) -> Parsed:
    """Parse a typed answer to ``question`` (buttons are handled by the caller).

    * scale -> :func:`parse_scale` with the question's bounds.
    * choice -> :func:`parse_choice`; the option's ``flag`` is reported.
    * yes_no -> :func:`parse_yes_no`; yes to a question with a ``flag`` reports it.
    * checklist -> "aucun", "none", "rien de tout ça", "non" -> ok with no flag; otherwise, when
      ``red_flags`` is given, the flags of ``question.flags`` read for certain in the text;
      only doubtful or no mentions -> ``unclear`` (the bot re-asks with the buttons).
    * text -> ok, value None (the caller stores the raw text).
    * photo -> a typed "passer"/"skip" skips it; anything else is unclear.

    An ``optional`` question is skipped by "passer", "skip", "non merci" ("non", "rien" too for
    a free-text question). Never raises.
    """
    try:
        return _parse_question(question, text, language, red_flags, fever_threshold)
    except Exception:
        return UNCLEAR


def _parse_question(
    question: Question,
    text: str,
    language: str,
    red_flags: Mapping[str, RedFlag] | None,
    fever_threshold: float,
) -> Parsed:
    plain = _plain(text)
    skip_words = _SKIP_PHRASES if question.type == "yes_no" else _SKIP_PHRASES | _POLITE_SKIP
    if question.type == "text" and question.optional:
        skip_words = skip_words | _NOTHING_TO_ADD
    if question.optional and plain in skip_words:
        return SKIP
    match question.type:
        case "scale":
            return parse_scale(text, minimum=question.min, maximum=question.max)
        case "choice":
            return parse_choice(text, question.options, language=language)
        case "yes_no":
            parsed = parse_yes_no(text)
            if parsed.option_id == "yes" and question.flag:
                return Parsed("ok", value=1, option_id="yes", flags=frozenset({question.flag}))
            return parsed
        case "checklist":
            if red_flags:
                mentions = scan_red_flags(text, red_flags, fever_threshold=fever_threshold)
                certain = frozenset(
                    m.flag
                    for m in mentions
                    if m.certainty == "certain" and m.flag in question.flags
                )
                if certain:
                    return Parsed("ok", flags=certain)
                if any(m.flag in question.flags for m in mentions):
                    return UNCLEAR
            if _is_checklist_none(text):
                return Parsed("ok")
            return UNCLEAR
        case "text":
            return Parsed("ok") if text.strip() else UNCLEAR
        case "photo":
            return SKIP if plain in _SKIP_PHRASES | _POLITE_SKIP else UNCLEAR
    return UNCLEAR
