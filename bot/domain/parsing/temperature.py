"""Body temperatures reported in free text ("39 de fièvre", "38.5°", "101 F")."""

from __future__ import annotations

import re

from text_to_num import alpha2digit

from bot.domain.parsing.normalise import to_ascii
from bot.domain.parsing.numbers import TEXT2NUM_LANGUAGES
from bot.domain.parsing.vocabulary import alternatives

_TEMPERATURE_RE = re.compile(
    # a comma or a point ends the number unless a digit follows ("38.6, is that normal?")
    r"(?<![\d.,])(?P<int>\d{2,3})(?:(?:[.,]|\s*deg\s*)(?P<dec>\d{1,2})(?!\d|[.,]\d))?"
    r"(?!\d|[.,]\d|\s*(?:/|"
    + alternatives(lambda words: words.temperature.score_after, after=r"\b")
    + r"))"
    r"(?P<half>\s*" + alternatives(lambda words: words.temperature.half) + r")?"
    # "deg" is the ° sign; celsius/fahrenheit and the c/f symbols are the same in every language.
    r"(?P<unit>\s*(?:degs?|"
    + alternatives(lambda words: words.temperature.degree_words)
    + r")\b(?:\s*[cf]\b)?|\s*(?:celsius|fahrenheit)\b|c\b|\s*f\b)?"
)
# "deg" is the ° sign (see normalise.to_ascii), in every language.
_FEVER_CONTEXT = re.compile(
    r"\b(?:" + alternatives(lambda words: words.temperature.fever_context) + r"|deg)\b"
)
_NUMBER_WORD_HINT = re.compile(alternatives(lambda words: words.temperature.number_words))


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
    normalized = to_ascii(text)
    if _NUMBER_WORD_HINT.search(normalized):
        for language in TEXT2NUM_LANGUAGES:
            try:
                normalized = alpha2digit(normalized, language)
            except Exception:  # noqa: S112
                continue
    best: float | None = None
    for _start, _end, value in _temperatures(normalized):
        best = value if best is None else max(best, value)
    return best


def temperature_spans(converted: str) -> list[tuple[int, int]]:
    """Where ``converted`` (ASCII, number words already digits) reports a body temperature:
    those numbers are never a score ("5 but I have a fever of 38.5" is a pain of 5)."""
    try:
        return [(start, end) for start, end, _value in _temperatures(converted)]
    except Exception:
        return []


def _temperatures(normalized: str) -> list[tuple[int, int, float]]:
    """(start, end, °C) of every number of ``normalized`` that reads as a body temperature."""
    found: list[tuple[int, int, float]] = []
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
            found.append((match.start(), match.end(), round(value, 1)))
    return found


def _sentence_around(text: str, start: int, end: int) -> str:
    left = max(text.rfind(c, 0, start) for c in ".!?;\n")
    rights = [i for i in (text.find(c, end) for c in "!?;\n") if i != -1]
    # a "." right after the number may be a decimal point already consumed; look for ". "
    dot = text.find(". ", end)
    if dot != -1:
        rights.append(dot)
    right = min(rights) if rights else len(text)
    return text[left + 1 : right]
