"""Body temperatures reported in free text ("39 de fièvre", "38.5°", "101 F")."""

from __future__ import annotations

import re

from text_to_num import alpha2digit

from bot.domain.parsing.normalise import to_ascii

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
    normalized = to_ascii(text)
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
