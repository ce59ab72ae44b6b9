"""KOOS JR interval scores (conversion table stored as data) and PGIC responders."""

from __future__ import annotations

from importlib import resources
from itertools import pairwise

import pytest

from bot.domain.scores import (
    koos_jr_interval,
    koos_jr_table,
    pgic_responder,
    validate_pgic,
)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([0, 0, 0, 0, 0, 0, 0], 100.0),  # raw 0
        ([4, 4, 4, 4, 4, 4, 4], 0.0),  # raw 28
        ([1, 1, 1, 1, 1, 1, 1], 68.284),  # raw 7 (independent app)
        ([3, 2, 2, 2, 2, 2, 2], 50.012),  # raw 15 (HL7 sample response)
    ],
)
def test_verified_anchors(items: list[int], expected: float) -> None:
    assert koos_jr_interval(items) == pytest.approx(expected, abs=1e-9)


def test_table_has_29_strictly_decreasing_rows() -> None:
    table = koos_jr_table()
    assert len(table) == 29
    assert table[0] == 100.0
    assert table[28] == 0.0
    assert all(a > b for a, b in pairwise(table))


def test_table_file_says_it_is_unverified() -> None:
    text = resources.files("bot.domain").joinpath("koos_jr_interval.csv").read_text("utf-8")
    first, header = text.splitlines()[:2]
    assert first.startswith("#")
    assert "UNVERIFIED" in first
    assert "HSS" in first
    assert header == "raw,interval"


def test_order_of_items_does_not_matter_only_the_sum() -> None:
    assert koos_jr_interval([4, 0, 0, 0, 0, 0, 3]) == koos_jr_interval([1, 1, 1, 1, 1, 1, 1])


@pytest.mark.parametrize("missing", range(7))
def test_a_missing_item_gives_no_score(missing: int) -> None:
    items: list[int | None] = [2] * 7
    items[missing] = None
    assert koos_jr_interval(items) is None


@pytest.mark.parametrize(
    "items",
    [
        [0] * 6,
        [0] * 8,
        [],
        [0, 0, 0, 0, 0, 0, 5],
        [-1, 0, 0, 0, 0, 0, 0],
        [None, 0, 0, 0, 0, 0, 9],  # out of range is an error even with a missing item
    ],
)
def test_wrong_count_or_out_of_range_raises(items: list[int | None]) -> None:
    with pytest.raises(ValueError):
        koos_jr_interval(items)


@pytest.mark.parametrize(("value", "responder"), [(1, True), (2, True), (3, False), (7, False)])
def test_pgic_responder(value: int, responder: bool) -> None:
    assert pgic_responder(value) is responder


@pytest.mark.parametrize("value", [0, 8, -1, 100])
def test_pgic_out_of_range_raises(value: int) -> None:
    with pytest.raises(ValueError):
        pgic_responder(value)
    with pytest.raises(ValueError):
        validate_pgic(value)


def test_validate_pgic_returns_the_value() -> None:
    assert [validate_pgic(v) for v in range(1, 8)] == list(range(1, 8))
