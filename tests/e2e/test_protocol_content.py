"""What the protocol files say and when, through the fake Telegram server: yes/no questions a
patient cannot misread, a greeting for the time of day, the unit's name in the patient's
language, and swelling that rises within the first 72 h raising a review for the physician."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.db.models import Alert
from bot.sandbox.fake_api import SentMessage
from bot.services.cards import rules_of
from tests.harness import PARIS, STAFF_CHAT, BotHarness, eventually, question
from tests.harness import Patient as VirtualPatient

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
DAY1 = datetime(2026, 12, 2, 10, 0, tzinfo=PARIS)
DAY2 = datetime(2026, 12, 3, 10, 0, tzinfo=PARIS)


async def say_to_next_question(patient: VirtualPatient, text: str) -> SentMessage:
    """Wait for the next question, type ``text``, return the question."""
    asked = await question(patient)
    patient.say(text)
    return asked


async def alert_rules(harness: BotHarness) -> list[str]:
    """Every rule an alert stands for (one reply meeting two rules gives one card naming both)."""
    async with harness.ctx.sessions() as session:
        return sorted(
            rule for alert in await session.scalars(select(Alert)) for rule in rules_of(alert)
        )


async def test_evening_check_in_greets_good_evening_then_the_morning_one_hello(
    harness: BotHarness,
) -> None:
    fr = await harness.consented_patient(6001, language="fr")
    en = await harness.consented_patient(6002, language="en", label="P-002")
    await harness.advance_to(EVENING)
    evening_fr, evening_en = await question(fr), await question(en)
    assert (evening_fr.text or "").startswith("Bonsoir ! Voici votre point de suivi.")
    assert (evening_en.text or "").startswith("Good evening! Here is your follow-up check-in.")
    # The day-0 pain question no longer says "since the procedure ... right now".
    assert "Quelle est la douleur de votre genou en ce moment" in (evening_fr.text or "")
    assert "How much does your knee hurt right now" in (evening_en.text or "")
    assert "Depuis le geste" not in (evening_fr.text or "")
    assert "Since the procedure" not in (evening_en.text or "")

    await harness.advance_to(DAY1)
    morning_fr, morning_en = await question(fr), await question(en)
    assert (morning_fr.text or "").startswith("Bonjour ! Voici votre point de suivi.")
    assert (morning_en.text or "").startswith("Hello! Here is your follow-up check-in.")


async def test_still_bleeding_typed_in_either_language_alerts_staff(harness: BotHarness) -> None:
    """The question is positive, so the words a bleeding patient types mean yes."""
    fr = await harness.consented_patient(6003, language="fr")
    en = await harness.consented_patient(6004, language="en", label="P-002")
    await harness.advance_to(EVENING)
    await say_to_next_question(fr, "2")
    await say_to_next_question(en, "2")
    asked_fr = await say_to_next_question(fr, "oui, encore")
    asked_en = await say_to_next_question(en, "yes it is")
    assert "Du sang traverse-t-il encore le pansement ?" in (asked_fr.text or "")
    assert "Is blood still coming through the dressing?" in (asked_en.text or "")
    await fr.until("vérifié aujourd'hui")
    await en.until("checked today")
    await harness.staff_message("Du sang traverse encore le pansement")

    async def both_alerted() -> None:
        assert await alert_rules(harness) == ["bleeding", "bleeding"]

    await eventually(both_alerted)


async def test_swelling_a_little_then_a_lot_within_72_hours_is_a_review_in_english(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(6005, language="en")
    await harness.advance_to(EVENING)
    for reply in ("3", "no", "no", "no"):
        await say_to_next_question(patient, reply)
    await say_to_next_question(patient, "a bit swollen")
    await patient.until("Noted: A little")
    await say_to_next_question(patient, "none of these")
    await say_to_next_question(patient, "none")  # painkillers before the procedure
    for _ in range(5):  # WHO-5 well-being, at baseline
        await say_to_next_question(patient, "most of the time")
    await patient.until("Thank you, that is all for today")
    assert await alert_rules(harness) == []

    await harness.advance_to(DAY2)  # day 1 left unanswered
    await say_to_next_question(patient, "3")
    await say_to_next_question(patient, "it's very swollen this morning")
    await patient.until("Noted: A lot")
    await patient.until("A nurse will contact you on the next working day")

    async def reviewed() -> None:
        assert await alert_rules(harness) == ["swelling_rising_early", "swelling_severe_early"]

    await eventually(reviewed)
    card = await harness.staff_message("deux niveaux dans les 72 premières heures")
    assert "référence 1 (la plus basse d'un suivi précédent)" in (card.text or "")


async def test_swelling_up_two_levels_on_day_1_is_a_review_in_french(harness: BotHarness) -> None:
    patient = await harness.consented_patient(6006, language="fr")
    await harness.advance_to(EVENING)
    for reply in ("2", "non", "non", "non"):
        await say_to_next_question(patient, reply)
    await say_to_next_question(patient, "pas gonflé")
    await patient.until("Noté : Pas du tout")
    await say_to_next_question(patient, "aucun")
    await say_to_next_question(patient, "aucun")  # painkillers before the procedure
    for _ in range(5):  # WHO-5 well-being, at baseline
        await say_to_next_question(patient, "souvent")
    await patient.until("Merci, c'est tout pour aujourd'hui")

    await harness.advance_to(DAY1)
    for reply in ("3", "4"):  # average and worst pain
        await say_to_next_question(patient, reply)
    await say_to_next_question(patient, "assez gonflé")
    await patient.until("Noté : Moyennement")
    await patient.until("Une infirmière vous contactera")

    async def reviewed() -> None:
        assert await alert_rules(harness) == ["swelling_rising_early"]

    await eventually(reviewed)
    await harness.staff_message("Gonflement en hausse de deux niveaux")


async def test_the_unit_is_named_in_the_patients_language(harness: BotHarness) -> None:
    await harness.stop_bot()
    harness.settings_overrides = {"unit_name_by_language": {"en": "Interventional Radiology"}}
    await harness.start_bot()
    welcomes = {}
    for user_id, language, label in ((6007, "en", "P-001"), (6008, "fr", "P-002")):
        invitation = await harness.enrol(label, language=language)
        patient = VirtualPatient(harness.server, user_id, language)
        patient.say(f"/start {invitation.token}")
        welcomes[language] = (await patient.next()).text or ""
    assert "the Interventional Radiology unit" in welcomes["en"]
    assert "Radiologie interventionnelle" not in welcomes["en"]
    assert "du service Radiologie interventionnelle" in welcomes["fr"]
    assert harness.server.sent(STAFF_CHAT) == []
