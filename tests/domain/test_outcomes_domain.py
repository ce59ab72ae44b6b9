"""Outcomes as pure functions (issue 16): painkillers read in patients' words, relief derived
per episode, the WHO-5 scored from its data file, and the two outcome rules on the real
protocol (a new opioid; relief wearing off after month 2, raised once)."""

from __future__ import annotations

import pytest

from bot.domain.painkillers import read_days, read_painkillers
from bot.domain.protocol import Indication, Protocol, ReliefDefinition
from bot.domain.relief import derive_relief, month_of, reaches_mcid
from bot.domain.rules import History, Observation, evaluate_answers
from bot.domain.who5 import who5_percentage, who5_poor_wellbeing
from bot.protocols import default_schedules_dir, load_protocol_file

P, N, W, S, OTHER = "paracetamol", "nsaid", "weak_opioid", "strong_opioid", "other"

#: (reply, classes, days) as a French patient types them: brands, typos, none, days.
FRENCH = [
    ("doliprane", {P}, None),
    ("Doliprane 1g 3 fois par jour tous les jours", {P}, 7),
    ("dolipran 2 jours", {P}, 2),
    ("Doliprame", {P}, None),
    ("efferalgant", {P}, None),
    ("dafalgn", {P}, None),
    ("ixprim", {W, P}, None),
    ("Ixprime 3 jours", {W, P}, 3),
    ("lamaline 3 jours", {W, P}, 3),
    ("lamalin", {W, P}, None),
    ("topalgic", {W}, None),
    ("Topalgik tous les jours", {W}, 7),
    ("nurofène deux jours", {N}, 2),
    ("advil", {N}, None),
    ("skénan", {S}, None),
    ("oxycontine", {S}, None),
    ("tramadole", {W}, None),
    ("ibuprophène", {N}, None),
    ("paracetamole 5 jours sur 7", {P}, 5),
    ("codoliprane", {W, P}, None),
    ("dafalgan codéine 4 jours", {W, P}, 4),
    ("juste du doliprane, pas de tramadol", {P}, None),
    ("doliprane et advil 5 jours", {P, N}, 5),
    ("Anti-inflammatoire", {N}, None),
    ("kétoprofène 2 jours", {N}, 2),
    ("néfopam", {OTHER}, None),
    ("rien", set(), 0),
    ("aucun", set(), 0),
    ("je n'ai rien pris", set(), 0),
    ("pas d'antidouleur", set(), 0),
    ("non merci", set(), 0),
]

ENGLISH = [
    ("paracetamol every day", {P}, 7),
    ("tylenol", {P}, None),
    ("acetaminophen 2 days", {P}, 2),
    ("parcetamol", {P}, None),
    ("ibuprofen twice", {N}, None),
    ("advile 3 days", {N}, 3),
    ("Advil and tramadol", {N, W}, None),
    ("I took some tylenol and tramadol", {P, W}, None),
    ("tramadol 50mg 2 times a day for 3 days", {W}, 3),
    ("codeine", {W}, None),
    ("co-codamol daily", {W, P}, 7),
    ("oxycontin 2 days", {S}, 2),
    ("morphine in the morning", {S}, None),
    ("oxycodone 1 day", {S}, 1),
    ("nurofen", {N}, None),
    ("naproxen 4 days", {N}, 4),
    ("diclofenac gel", {N}, None),
    ("celebrex every day", {N}, 7),
    ("gabapentin", {OTHER}, None),
    ("aspirin 2 days", {N}, 2),
    ("nothing", set(), 0),
    ("none", set(), 0),
    ("no painkillers at all", set(), 0),
    ("I didn't take any", set(), 0),
    ("nope", set(), 0),
]


@pytest.mark.parametrize(("text", "classes", "days"), FRENCH + ENGLISH)
def test_painkillers_read_in_patients_words(text: str, classes: set[str], days: int | None) -> None:
    reading = read_painkillers(text)
    assert (reading.status, set(reading.classes), reading.days) == ("ok", classes, days)


@pytest.mark.parametrize(
    "text",
    [
        "je crois du tramadol",
        "topalgique",
        "I think oxycodone?",
        "avril",
        "peut-être de la morphine",
    ],
)
def test_hedged_or_approximate_names_are_doubtful(text: str) -> None:
    reading = read_painkillers(text)
    assert reading.status == "doubtful" and reading.classes and reading.names


@pytest.mark.parametrize(
    "text", ["des cachets", "je ne sais plus", "i take painkillers in the morning", "bof", ""]
)
def test_replies_naming_no_drug_are_unclear(text: str) -> None:
    assert read_painkillers(text).status == "unclear"


@pytest.mark.parametrize(
    ("text", "days"),
    [("3", 3), ("trois", 3), ("tous les jours", 7), ("2 jours sur 7", 2), ("5/7", 5),
     ("1 fois", 1), ("0", 0), ("8", None), ("de temps en temps", None), ("2 ou 3", None),
     ("every day", 7), ("four days", 4)],
)  # fmt: skip
def test_days_of_the_week(text: str, days: int | None) -> None:
    assert read_days(text) == days


RELIEF = ReliefDefinition(percent=30, points=2, back_within=1, consecutive=2)


def test_mcid_is_30_percent_or_2_points() -> None:
    assert reaches_mcid(RELIEF, baseline=7, value=5)  # 2 points
    assert reaches_mcid(RELIEF, baseline=3, value=2)  # 1 point but 33 %
    assert not reaches_mcid(RELIEF, baseline=7, value=6)  # 1 point, 14 %
    assert reaches_mcid(RELIEF, baseline=10, value=7)  # 30 % exactly
    assert not reaches_mcid(RELIEF, baseline=0, value=0)


def test_relief_onset_kept_and_end_dated_at_the_first_of_two_check_ins() -> None:
    kept = derive_relief(RELIEF, baseline=7, values=[(1, 6), (7, 4), (42, 3), (91, 4)])
    assert (kept.onset_day, kept.ended_day, kept.kept, kept.last_day) == (7, None, True, 91)
    ended = derive_relief(RELIEF, baseline=7, values=[(7, 4), (42, 3), (91, 6), (182, 7)])
    assert (ended.onset_day, ended.ended_day, ended.confirmed_day) == (7, 91, 182)
    assert month_of(ended.ended_day or 0) == 3
    # One check-in back at baseline, then relief again: not ended.
    blip = derive_relief(RELIEF, baseline=7, values=[(7, 4), (14, 6), (42, 3), (91, 6)])
    assert blip.kept
    never = derive_relief(RELIEF, baseline=7, values=[(7, 6), (42, 7)])
    assert (never.had_relief, never.kept) == (False, False)
    assert derive_relief(RELIEF, baseline=None, values=[(7, 1)]).onset_day is None


@pytest.mark.parametrize(
    ("items", "percentage", "poor"),
    [
        ([5, 5, 5, 5, 5], 100, False),  # best imaginable well-being
        ([0, 0, 0, 0, 0], 0, True),  # worst
        ([3, 3, 3, 2, 2], 52, False),  # raw 13: the published cut-off is "below 13"
        ([3, 3, 2, 2, 2], 48, True),  # raw 12
        ([5, 4, 3, 2, 1], 60, False),  # raw 15 x 4
    ],
)
def test_who5_scored_as_published(items: list[int], percentage: int, poor: bool) -> None:
    assert who5_percentage(items) == percentage
    assert who5_poor_wellbeing(percentage) is poor


def test_who5_missing_item_gives_no_score_and_bad_items_raise() -> None:
    assert who5_percentage([5, 5, None, 5, 5]) is None
    with pytest.raises(ValueError, match="5 items"):
        who5_percentage([5, 5])
    with pytest.raises(ValueError, match=r"0\.\.5"):
        who5_percentage([6, 5, 5, 5, 5])


@pytest.fixture(scope="module")
def real() -> Protocol:
    return load_protocol_file(default_schedules_dir() / "knee-cryoneurolysis.yaml")


def painkillers(checkin: str, day: int, *classes: str, baseline: bool = False) -> Observation:
    question = "painkillers_before" if baseline else "painkillers"
    return Observation(checkin, question, day, 3 if classes else 0, items=frozenset(classes))


def fired(protocol: Protocol, past: list[Observation], new: list[Observation]) -> set[str]:
    history = History(Indication.OSTEOARTHRITIS, 7, (*past, *new))
    return {finding.rule_id for finding in evaluate_answers(protocol, history, new)}


def test_new_opioid_after_none_before_fires_once(real: Protocol) -> None:
    before = painkillers("d0_evening", 0, baseline=True)
    first = painkillers("d7", 7, P, W)
    assert fired(real, [before], [first]) == {"new_opioid"}
    # Still on tramadol at 6 weeks: the start was already reported.
    assert "new_opioid" not in fired(real, [before, first], [painkillers("w6", 42, W)])


def test_no_new_opioid_without_baseline_or_when_taken_before(real: Protocol) -> None:
    assert "new_opioid" not in fired(real, [], [painkillers("d7", 7, W)])
    on_before = painkillers("d0_evening", 0, W, baseline=True)
    assert "new_opioid" not in fired(real, [on_before], [painkillers("d7", 7, S)])
    none_before = painkillers("d0_evening", 0, baseline=True)
    assert "new_opioid" not in fired(real, [none_before], [painkillers("d7", 7, P, N)])


def pain(checkin: str, day: int, value: int) -> Observation:
    return Observation(checkin, "pain_avg", day, value)


def test_relief_wearing_off_after_month_2_fires_at_the_confirming_check_in_only(
    real: Protocol,
) -> None:
    course = [pain("d7", 7, 3), pain("w6", 42, 2), pain("m3", 91, 6)]
    assert "relief_wearing_off" not in fired(real, course[:2], course[2:])
    assert "relief_wearing_off" in fired(real, course, [pain("m6", 182, 7)])
    # Relief lost at 6 weeks already: an early failure, not a wearing off.
    early = [pain("d7", 7, 3), pain("d14", 14, 7)]
    assert "relief_wearing_off" not in fired(real, early, [pain("w6", 42, 7)])
