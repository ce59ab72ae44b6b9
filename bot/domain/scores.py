"""Patient-reported outcome scores: KOOS JR (interval score) and PGIC (responder).

Pure functions. The KOOS JR raw-to-interval conversion table is DATA, stored in
``koos_jr_interval.csv`` next to this module and read once. That table is NOT verified against
the official HSS scoring sheet (docs/clinical.md §4): only raw 0 -> 100, 7 -> 68.284, 15 -> 50.012 and
28 -> 0 are confirmed. It must be checked before clinical use.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

__all__ = [
    "KOOS_JR_ITEMS",
    "KOOS_JR_MAX_ITEM",
    "PGIC_MAX",
    "PGIC_MIN",
    "koos_jr_interval",
    "koos_jr_table",
    "pgic_responder",
    "validate_pgic",
]

KOOS_JR_ITEMS = 7
KOOS_JR_MAX_ITEM = 4  # None=0, Mild=1, Moderate=2, Severe=3, Extreme=4 (LOINC LL4051-0)
PGIC_MIN = 1  # very much improved
PGIC_MAX = 7  # very much worse
_PGIC_RESPONDER_MAX = 2  # 1 very much improved, 2 much improved (Farrar 2001)
_TABLE_FILE = "koos_jr_interval.csv"


@lru_cache(maxsize=1)
def koos_jr_table() -> tuple[float, ...]:
    """The 29 interval scores indexed by raw sum 0..28 (read once from the package data)."""
    text = resources.files(__package__ or "bot.domain").joinpath(_TABLE_FILE).read_text("utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    table: dict[int, float] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        table[int(row["raw"])] = float(row["interval"])
    expected = range(KOOS_JR_ITEMS * KOOS_JR_MAX_ITEM + 1)
    if sorted(table) != list(expected):
        raise ValueError(f"{_TABLE_FILE} must have one row per raw sum 0..{expected[-1]}")
    return tuple(table[raw] for raw in expected)


def koos_jr_interval(item_values: Sequence[int | None]) -> float | None:
    """KOOS JR interval score (100 = perfect knee health, 0 = total disability).

    ``item_values``: the 7 items in questionnaire order, each 0..4, ``None`` when unanswered.
    A missing item gives ``None`` (KOOS JR does not impute). A wrong number of items or a value
    out of 0..4 raises ``ValueError``.
    """
    if len(item_values) != KOOS_JR_ITEMS:
        raise ValueError(f"KOOS JR has {KOOS_JR_ITEMS} items, got {len(item_values)}")
    for position, value in enumerate(item_values, start=1):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"KOOS JR item {position} must be an integer, got {value!r}")
        if not 0 <= value <= KOOS_JR_MAX_ITEM:
            raise ValueError(f"KOOS JR item {position} must be 0..{KOOS_JR_MAX_ITEM}, got {value}")
    if any(value is None for value in item_values):
        return None
    raw = sum(value for value in item_values if value is not None)
    return koos_jr_table()[raw]


def validate_pgic(value: int) -> int:
    """``value`` when it is a PGIC answer 1..7, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or not PGIC_MIN <= value <= PGIC_MAX:
        raise ValueError(f"PGIC must be an integer {PGIC_MIN}..{PGIC_MAX}, got {value!r}")
    return value


def pgic_responder(value: int) -> bool:
    """True for "very much improved" (1) or "much improved" (2); ValueError outside 1..7."""
    return validate_pgic(value) <= _PGIC_RESPONDER_MAX
