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
DENOMINATOR = re.compile(r"^\s*(?:/|sur\b|out of\b|over\b|on\b)\s*(\d+)(?![\d.,])")
RANGE_LINK = re.compile(r"^\s*(?:-+|a|to|ou|or)\s*$")
BETWEEN_LINK = re.compile(r"^\s*(?:et|and)\s*$")
BETWEEN_BEFORE = re.compile(r"\b(?:entre|between|from|de)\s*$")


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
    r"|\b(?:le|du|au|depuis|on|since|the)\s+\d{1,2}[/.]\d{1,2}\b"
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
        ) or bool(re.search(r"\b(?:moins|minus)\s*$", before))
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
