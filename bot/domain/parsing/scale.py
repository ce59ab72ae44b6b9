"""Scale answers (0-10 pain and the like): only a number the patient actually wrote."""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.parsing.numbers import (
    BETWEEN_BEFORE,
    BETWEEN_LINK,
    DATE_SPAN,
    DENOMINATOR,
    RANGE_LINK,
    find_numbers,
    number_text,
)
from bot.domain.parsing.results import UNCLEAR, Parsed
from bot.domain.parsing.temperature import temperature_spans


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
    "10h", "500 mg", "38°"), an ordinal ("2e jour") or a body temperature ("5 but I have a fever
    of 38.5": the fever is read by the red-flag scan) are never taken as the score.
    """
    try:
        return _parse_scale(text, minimum, maximum)
    except Exception:
        return UNCLEAR


def _parse_scale(text: str, minimum: int, maximum: int) -> Parsed:
    converted = number_text(text)
    temperatures = temperature_spans(converted)
    numbers = [
        n for n in find_numbers(converted) if not any(a <= n.start < b for a, b in temperatures)
    ]
    if not numbers:
        return UNCLEAR

    # 1. "x/10", "x sur 10", "x out of 10" (denominator = the scale maximum) wins over the rest.
    scored: list[int | None] = []
    for index, number in enumerate(numbers):
        found = DENOMINATOR.match(converted[number.end :])
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
            and RANGE_LINK.match(converted[previous.end : number.start])
        ):
            value = max(value, previous.value)  # "6-7/10"
        scored.append(value)
    if scored:
        return _scale_value(scored, minimum, maximum)
    if DATE_SPAN.search(converted):
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
            if RANGE_LINK.match(link) or (
                BETWEEN_LINK.match(link) and BETWEEN_BEFORE.search(converted[: number.start])
            ):
                if number.value is None or following.value is None:
                    return UNCLEAR
                values.append(max(number.value, following.value))
                index += 2
                continue
        values.append(number.value)
        index += 1
    return _scale_value(values, minimum, maximum)
