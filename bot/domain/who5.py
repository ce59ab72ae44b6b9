"""WHO-5 Well-Being Index: the global quality-of-life measure the bot asks (README: why this one).

Pure. The scoring rule is DATA in ``who5.yaml`` next to this module (items, item range,
multiplier, published cut-offs), read once, so the code holds no number of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

__all__ = ["Who5Scoring", "who5_percentage", "who5_poor_wellbeing", "who5_scoring"]

_DATA_FILE = "who5.yaml"


@dataclass(frozen=True)
class Who5Scoring:
    """The scoring rule of the WHO-5, as published."""

    items: int
    item_min: int
    item_max: int
    multiplier: int
    poor_wellbeing_below_raw: int
    meaningful_change: int


@lru_cache(maxsize=1)
def who5_scoring() -> Who5Scoring:
    """The scoring data (read once from the package)."""
    text = resources.files(__package__ or "bot.domain").joinpath(_DATA_FILE).read_text("utf-8")
    data = yaml.safe_load(text)
    return Who5Scoring(**{name: int(data[name]) for name in Who5Scoring.__dataclass_fields__})


def who5_percentage(item_values: Sequence[int | None]) -> int | None:
    """The WHO-5 percentage score (0-100), or None when an item is missing.

    ``item_values``: the five items in questionnaire order, each 0..5. A wrong number of items
    or a value out of range raises ``ValueError``.
    """
    scoring = who5_scoring()
    if len(item_values) != scoring.items:
        raise ValueError(f"WHO-5 has {scoring.items} items, got {len(item_values)}")
    for position, value in enumerate(item_values, start=1):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"WHO-5 item {position} must be an integer, got {value!r}")
        if not scoring.item_min <= value <= scoring.item_max:
            raise ValueError(
                f"WHO-5 item {position} must be {scoring.item_min}..{scoring.item_max}, got {value}"
            )
    if any(value is None for value in item_values):
        return None
    return sum(value for value in item_values if value is not None) * scoring.multiplier


def who5_poor_wellbeing(percentage: int) -> bool:
    """True below the published cut-off (raw score below 13, i.e. percentage below 52)."""
    scoring = who5_scoring()
    return percentage < scoring.poor_wellbeing_below_raw * scoring.multiplier
