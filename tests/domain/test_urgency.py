"""The urgent reading of an arriving message: thresholds and flags come from the protocol."""

from __future__ import annotations

import pytest

from bot.domain.urgency import UrgencyRules
from bot.protocols import ProtocolRegistry, default_schedules_dir


@pytest.fixture(scope="module")
def rules() -> UrgencyRules:
    return UrgencyRules.of(ProtocolRegistry.from_dir(default_schedules_dir()).all())


@pytest.mark.parametrize(
    ("text", "urgent"),
    [
        ("9", True),  # pain_high: >= 8 is urgent in the protocol
        ("8/10", True),
        ("7", False),
        ("4", False),
        ("j'ai 39 de fièvre depuis ce matin", True),  # R3, urgent
        ("pas de fièvre, ça va", False),
        ("le mollet est gonflé et douloureux", True),  # R2, urgent
        ("merci beaucoup", False),
    ],
)
def test_a_text_is_urgent_by_the_protocols_flags_and_thresholds(
    rules: UrgencyRules, text: str, urgent: bool
) -> None:
    assert rules.text_is_urgent(text) is urgent


def test_a_number_is_read_against_the_open_question(rules: UrgencyRules) -> None:
    assert rules.text_is_urgent("9", open_question="pain_avg")
    assert not rules.text_is_urgent("9", open_question="pain_worst")  # no urgent threshold
    assert not rules.text_is_urgent("9", open_question="swelling")  # not a scale


def test_button_presses(rules: UrgencyRules) -> None:
    assert rules.press_is_urgent("a:12:0:9", open_question="pain_avg")
    assert not rules.press_is_urgent("a:12:0:3", open_question="pain_avg")
    assert rules.press_is_urgent("f:R3:y")  # yes to "do you have a fever?"
    assert not rules.press_is_urgent("f:R3:n")
    assert not rules.press_is_urgent("f:V1:y")  # a review flag
    assert rules.press_is_urgent("a:12:3:1", open_question="bleeding")  # yes_no, flag R10
    assert not rules.press_is_urgent("a:12:3:0", open_question="bleeding")
    assert rules.press_is_urgent("d:12:4", open_question="flags_full")  # Done with ticks
    assert not rules.press_is_urgent("n:12:4", open_question="flags_full")  # none of these
    assert not rules.press_is_urgent("c:y")
