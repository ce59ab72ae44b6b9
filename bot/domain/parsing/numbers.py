"""Numbers a patient wrote, in digits or words, and which of them can be a score.

A number with a unit, an ordinal, a time, a day number, a date or a denominator is never the
score: :func:`find_numbers` marks those ``excluded``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from text_to_num import alpha2digit

from bot.domain.parsing.normalise import to_ascii
from bot.domain.parsing.vocabulary import alternatives, every, every_mapping

#: The languages text2num reads number words in, one after the other.
TEXT2NUM_LANGUAGES = every(lambda words: (words.text2num,) if words.text2num else ())

# alpha2digit leaves 0, 1 and 2 alone when isolated ("un peu" must stay words); these are
# handled here, with "un/une/one" accepted only where it cannot be an article.
_SMALL_NUMBERS = every_mapping(lambda words: words.numbers.small_numbers)
_ONES = "|".join(re.escape(word) for word, value in _SMALL_NUMBERS.items() if value == 1)
_NOT_ONES = "|".join(re.escape(word) for word, value in _SMALL_NUMBERS.items() if value != 1)
_LONE_O = re.compile(r"\bo\b")
_DENOMINATOR_BEFORE = re.compile(
    r"(?:/|"
    + alternatives(lambda words: words.numbers.scale_before_number, before=r"\b")
    + r")\s*$"
)
_SMALL_NOT_ONE = re.compile(r"\b(?:" + _NOT_ONES + r")\b")
_ONE_ALONE = re.compile(r"^\W*(?:" + _ONES + r")\W*$")
_ONE_BEFORE = re.compile(
    r"\b(?:"
    + _ONES
    + r")\b(?=\s*(?:/|-|"
    + alternatives(lambda words: words.numbers.one_before, after=r"\b")
    + r")\s*\d)"
)
_ONE_AFTER = re.compile(
    r"\b(" + alternatives(lambda words: words.numbers.one_after) + r")\s+(?:" + _ONES + r")\b"
    r"(?=\s*(?:[.!,;]|$))"
)
_HYPHENATED_WORDS = re.compile(r"\b([a-z]+)-([a-z]+)\b")
_NUMBER_RE = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)?(?![\d])")
_UNIT_AFTER = re.compile(
    # with or without a space: "2 jours", "500mg", "38 deg" (the ° sign), "3 fois"
    r"^\s*(?:" + alternatives(lambda words: words.numbers.units_after) + r"|mg|kg|ml|cl|km|cm|mm"
    r"|deg)\b"
    # attached only: "10h", "4e", "2nd", "38c", "3j", "5x", "30%", "10:30"
    r"|^(?:" + alternatives(lambda words: words.numbers.units_attached) + r"|h|c|f|x|g|m)\b"
    r"|^\s*%|^:\d"
)
_UNIT_BEFORE = re.compile(
    r"(?:\b" + alternatives(lambda words: words.numbers.units_before) + r"\s*|[h:+])$"
)
_COMPARATOR_BEFORE = re.compile(
    r"(?:\b" + alternatives(lambda words: words.numbers.comparators_before) + r"\s*|[<>]\s*)$"
)
_MINUS_BEFORE = re.compile(r"\b" + alternatives(lambda words: words.numbers.minus_before) + r"\s*$")
DENOMINATOR = re.compile(
    r"^\s*(?:/|"
    + alternatives(lambda words: words.numbers.scale_after_score, after=r"\b")
    + r")\s*(\d+)(?![\d.,])"
)
RANGE_LINK = re.compile(
    r"^\s*(?:-+|" + alternatives(lambda words: words.numbers.range_links) + r")\s*$"
)
BETWEEN_LINK = re.compile(
    r"^\s*" + alternatives(lambda words: words.numbers.between_links) + r"\s*$"
)
BETWEEN_BEFORE = re.compile(
    r"\b" + alternatives(lambda words: words.numbers.between_before) + r"\s*$"
)


def number_text(text: str) -> str:
    """Lower-case ASCII text with number words turned into digits (French then English)."""
    text = to_ascii(text)
    text = _HYPHENATED_WORDS.sub(
        lambda m: m.group(0) if not _is_number_word_pair(m) else f"{m.group(1)} - {m.group(2)}",
        text,
    )
    # text2num reads a lone "o" as "oh" (zero, as in "o o seven"): "O O" would become "00", a
    # number the patient never gave. Shield it.
    text = _LONE_O.sub("~", text)
    for language in TEXT2NUM_LANGUAGES:
        try:
            text = alpha2digit(text, language)
        except Exception:  # noqa: S112 — a library hiccup must not lose the answer
            continue
    text = _SMALL_NOT_ONE.sub(lambda m: str(_SMALL_NUMBERS[m.group(0)]), text)
    if _ONE_ALONE.match(text):
        return "1"
    text = _ONE_BEFORE.sub("1", text)
    return _ONE_AFTER.sub(r"\1 1", text)


def _is_number_word_pair(match: re.Match[str]) -> bool:
    """True for "six-sept" (a range) but not "dix-sept" (17, read whole by alpha2digit)."""
    whole = match.group(0)
    for language in TEXT2NUM_LANGUAGES:
        try:
            if alpha2digit(whole, language) != whole:
                return False
        except Exception:  # noqa: S112
            continue
    converted = [_safe_a2d(part) for part in (match.group(1), match.group(2))]
    return all(part.isdigit() for part in converted)


def _safe_a2d(word: str) -> str:
    for language in TEXT2NUM_LANGUAGES:
        try:
            converted = str(alpha2digit(word, language))
        except Exception:  # noqa: S112
            continue
        if converted != word:
            return converted
    return str(_SMALL_NUMBERS[word]) if word in _SMALL_NUMBERS else word


def _round_half_up(number: str) -> int | None:
    try:
        return int(Decimal(number.replace(",", ".")).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        return None


@dataclass
class Number:
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
DATE_SPAN = re.compile(
    r"\b\d{1,2}([/.-])\d{1,2}\1\d{2,4}\b"  # one separator: "6-7/10" is a range
    r"|\b" + alternatives(lambda words: words.numbers.date_before) + r"\s+\d{1,2}[/.]\d{1,2}\b"
)


def find_numbers(text: str) -> list[Number]:
    numbers: list[Number] = []
    dates = [(m.start(), m.end()) for m in DATE_SPAN.finditer(text)]
    for match in _NUMBER_RE.finditer(text):
        before, after = text[: match.start()], text[match.end() :]
        in_date = any(start <= match.start() < end for start, end in dates)
        # "/10", "sur 10", "out of 10" name the scale, never the score ("o/10" is not 10).
        denominator = bool(_DENOMINATOR_BEFORE.search(before))
        has_unit = bool(_UNIT_AFTER.match(after) or _UNIT_BEFORE.search(before))
        # "-3" is negative; "6-7", "6 - 7" and "6--7" are ranges
        negative = (
            before.endswith("-") and not before.rstrip("-").rstrip()[-1:].isdigit()
        ) or bool(_MINUS_BEFORE.search(before))
        numbers.append(
            Number(
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
        if second.unit and (RANGE_LINK.match(link) or BETWEEN_LINK.match(link)):
            first.excluded = True
    return numbers
