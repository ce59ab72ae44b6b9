"""Yes/no questions a patient cannot misread (bot/domain/wording.py): the negation words of each
language come from its parsing.yaml (``negative_question``), and every shipped question passes."""

from __future__ import annotations

import pytest

from bot.domain.wording import check_wording, negative_reading
from bot.protocols import default_schedules_dir, load_protocol_file


@pytest.mark.parametrize(
    ("text", "language", "verdict"),
    [
        ("Is the bleeding through the dressing not stopping?", "en", "negative ('not')"),
        ("Hasn't the bleeding stopped?", "en", "negative ('not')"),
        ("Can't you put weight on it?", "en", "negative ('not')"),
        ("Is the pain no longer relieved by painkillers?", "en", "negative ('no', 'no longer')"),
        ("Is the bleeding still not under control?", "en", "negative ('not')"),
        ("Can you walk without help?", "en", "negative ('without')"),
        ("Is the bleeding continuing?", "en", "both ways ('continuing')"),
        ("Has the bleeding stopped?", "en", "both ways ('stopped')"),
        ("Le saignement ne s'arrête-t-il pas ?", "fr", "negative ('ne', 'pas')"),
        ("Ne sentez-vous plus votre pied ?", "fr", "negative ('ne')"),
        ("N'arrivez-vous pas à marcher ?", "fr", "negative ('n', 'pas')"),
        ("Pouvez-vous marcher sans aide ?", "fr", "negative ('sans')"),
        ("Le saignement continue-t-il ?", "fr", "both ways ('continue')"),
        ("Le saignement s'est-il arrêté ?", "fr", "both ways ('arrete')"),  # yes = good news
        ("Is blood still coming through the dressing?", "en", None),
        ("Du sang traverse-t-il encore le pansement ?", "fr", None),
        ("Do you have a fever of 38 °C or more, or chills?", "en", None),
        ("Votre jambe est-elle faible, ou avez-vous du mal à vous appuyer dessus ?", "fr", None),
    ],
)
def test_a_question_reads_positively_or_is_named_negative(
    text: str, language: str, verdict: str | None
) -> None:
    why = negative_reading(text, language)
    if verdict is None:
        assert why is None
    else:
        assert why is not None and why.endswith(verdict)


def test_each_language_reads_only_its_own_words() -> None:
    # "pas" and "ne" are French words; in an English text they are not a negation.
    assert negative_reading("Is the pas de deux hurting your knee?", "en") is None
    assert negative_reading("Avez-vous mal, not at all ?", "fr") is None


def test_a_language_without_vocabulary_cannot_be_checked() -> None:
    with pytest.raises(KeyError):
        negative_reading("¿Sigue sangrando?", "es")


@pytest.mark.parametrize("name", ["knee-cryoneurolysis.yaml", "chronic-knee-pain.yaml"])
def test_every_shipped_yes_no_question_reads_positively(name: str) -> None:
    assert check_wording(load_protocol_file(default_schedules_dir() / name)) == []
