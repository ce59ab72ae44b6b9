"""Painkillers and relief end to end (issue 16), through python-telegram-bot and the fake
Telegram server: the painkiller question by buttons and in patients' own words (brands, typos,
"rien", a doubtful name checked with a yes/no button question), an opioid started after the
procedure raising its review card, and relief ending at month 3 raising its review card once."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select

from bot.db.models import Answer
from bot.sandbox.fake_api import SentMessage
from tests.harness import NURSE, PARIS, STAFF_CHAT, BotHarness, eventually, question
from tests.harness import Patient as VirtualPatient

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
D7 = datetime(2026, 12, 8, 10, 0, tzinfo=PARIS)
W6 = datetime(2027, 1, 12, 10, 0, tzinfo=PARIS)
M3 = datetime(2027, 3, 1, 10, 0, tzinfo=PARIS)
M6 = datetime(2027, 6, 1, 10, 0, tzinfo=PARIS)
P, N, W, S, OTHER = "paracetamol", "nsaid", "weak_opioid", "strong_opioid", "other"

#: The d7 questions before the painkiller one, as button labels.
BEFORE_PAINKILLERS = {
    "fr": ["2", "Pas du tout", "Non", "Non", "Non", "Non", "Normalement", "Aucun de ces signes"],
    "en": ["2", "Not at all", "No", "No", "No", "No", "Normally", "None of these"],
}

#: (reply, classes, days): when a reply says no days, the patient taps "2" when asked; a
#: doubtful one is confirmed with "Yes" first.
FRENCH_REPLIES = [
    ("doliprane", {P}, None),
    ("Doliprane 1g 3 fois par jour tous les jours", {P}, 7),
    ("dolipran 2 jours", {P}, 2),
    ("efferalgant", {P}, None),
    ("dafalgan codéine 4 jours", {P, W}, 4),
    ("ixprim", {P, W}, None),
    ("Lamaline 3 jours", {P, W}, 3),
    ("topalgic tous les jours", {W}, 7),
    ("topalgique", {W}, "doubtful"),
    ("advil", {N}, None),
    ("nurofène deux jours", {N}, 2),
    ("skénan", {S}, None),
    ("oxycontine 5 jours", {S}, 5),
    ("tramadole", {W}, None),
    ("ibuprophène 3 jours", {N}, 3),
    ("juste du doliprane, pas de tramadol", {P}, None),
    ("doliprane et advil 5 jours", {P, N}, 5),
    ("un anti-inflammatoire", {N}, None),
    ("néfopam 1 jour", {OTHER}, 1),
    ("je crois du tramadol", {W}, "doubtful"),
    ("rien", set(), 0),
    ("je n'ai rien pris", set(), 0),
]
ENGLISH_REPLIES = [
    ("paracetamol every day", {P}, 7),
    ("tylenol", {P}, None),
    ("acetaminophen 2 days", {P}, 2),
    ("parcetamol", {P}, None),
    ("ibuprofen", {N}, None),
    ("advile 3 days", {N}, 3),
    ("Advil and tramadol", {N, W}, None),
    ("tramadol 50mg 2 times a day for 3 days", {W}, 3),
    ("codeine", {W}, None),
    ("co-codamol daily", {P, W}, 7),
    ("oxycontin 2 days", {S}, 2),
    ("morphine", {S}, None),
    ("nurofen 4 days", {N}, 4),
    ("naproxen", {N}, None),
    ("diclofenac gel every day", {N}, 7),
    ("celebrex", {N}, None),
    ("gabapentin", {OTHER}, None),
    ("I think oxycodone?", {S}, "doubtful"),
    ("aspirin 1 day", {N}, 1),
    ("nothing", set(), 0),
    ("none at all", set(), 0),
    ("I didn't take any", set(), 0),
]


async def tap(patient: VirtualPatient, label: str) -> SentMessage:
    """Wait for the next question and tap the button labelled exactly ``label``."""
    message = await question(patient)
    labels = [text for text, _ in message.buttons()]
    assert label in labels, (label, labels, message.text)
    patient.server.press_button(patient.user_id, message.message_id, dict(message.buttons())[label])
    return message


async def painkiller_rows(harness: BotHarness, chat_id: int) -> list[Answer]:
    from bot.db.models import Episode, Patient

    async with harness.ctx.sessions() as session:
        return list(
            await session.scalars(
                select(Answer)
                .join(Episode, Answer.episode_id == Episode.id)
                .join(Patient, Episode.patient_id == Patient.id)
                .where(Patient.chat_id == chat_id, Answer.question_id == "painkillers")
                .order_by(Answer.id)
            )
        )


async def to_painkillers(patient: VirtualPatient, language: str) -> SentMessage:
    """Answer the d7 questions before the painkiller one; return the painkiller question."""
    for label in BEFORE_PAINKILLERS[language]:
        await tap(patient, label)
    painkillers = await question(patient)
    assert "antidouleurs" in (painkillers.text or "") or "painkillers" in (painkillers.text or "")
    return painkillers


async def test_painkillers_by_buttons(harness: BotHarness) -> None:
    fr = await harness.consented_patient(4001, language="fr", label="P-FR")
    en = await harness.consented_patient(4002, language="en", label="P-EN")
    await harness.advance_to(D7)
    ask = await to_painkillers(fr, "fr")
    labels = [label for label, _ in ask.buttons()]
    assert labels[-2:] == ["Aucun", "Valider"] and labels[0].startswith("☐ Paracétamol")
    fr.tap(ask, "Paracétamol")
    await harness.server.wait_for(
        lambda m: m.message_id == ask.message_id and "☑ Paracétamol" in str(m.buttons())
    )
    fr.tap(ask, "Opioïde faible")
    await harness.server.wait_for(
        lambda m: m.message_id == ask.message_id and "☑ Opioïde faible" in str(m.buttons())
    )
    fr.tap(ask, "Valider")
    days = await question(fr)
    assert "combien de ces 7 jours" in (days.text or "")
    assert [label for label, _ in days.buttons()] == [str(n) for n in range(1, 8)]
    fr.tap(days, "3")
    await fr.until("Noté : paracétamol, opioïde faible — 3 jours sur 7")

    none = await to_painkillers(en, "en")
    en.tap(none, "None")
    await en.until("Noted: no painkiller")

    (row_fr,) = [r for r in await painkiller_rows(harness, 4001) if r.status == "ok"]
    assert (row_fr.choices, row_fr.value, row_fr.kind) == ([P, W], 3, "button")
    (row_en,) = await painkiller_rows(harness, 4002)
    assert (row_en.choices, row_en.value, row_en.option_id) == (None, 0, "none")


async def _reply(
    harness: BotHarness, patient: VirtualPatient, language: str, text: str, expect: object
) -> None:
    await to_painkillers(patient, language)
    patient.say(text)
    if expect == "doubtful":
        check = await question(patient)
        assert ("Pour être sûr" in (check.text or "")) or ("Just to be sure" in (check.text or ""))
        patient.tap(check, "Oui" if language == "fr" else "Yes")
        expect = None
    if expect is None:
        days = await question(patient)
        assert "7" in (days.text or ""), days.text
        patient.tap(days, "2")
    comment = await question(patient)  # the next question: the check-in moved on
    assert "Passer" in str(comment.buttons()) or "Skip" in str(comment.buttons())


async def test_painkillers_in_patients_own_words(harness: BotHarness) -> None:
    cases = [("fr", *case) for case in FRENCH_REPLIES] + [("en", *case) for case in ENGLISH_REPLIES]
    assert sum(1 for case in cases if case[0] == "fr") >= 20
    assert sum(1 for case in cases if case[0] == "en") >= 20
    patients = []
    for index, (language, *_rest) in enumerate(cases):
        patients.append(
            await harness.consented_patient(5000 + index, language=language, label=f"P-{index:03d}")
        )
    await harness.advance_to(D7)
    await asyncio.gather(
        *(
            _reply(harness, patient, language, text, expect)
            for patient, (language, text, _classes, expect) in zip(patients, cases, strict=True)
        )
    )
    await harness.settle()
    for index, (_language, text, classes, expect) in enumerate(cases):
        rows = [r for r in await painkiller_rows(harness, 5000 + index) if r.status == "ok"]
        final = rows[-1]
        days = 2 if expect in (None, "doubtful") else expect
        assert (set(final.choices or ()), final.value) == (classes, days), text
        assert any(r.raw_text == text for r in await painkiller_rows(harness, 5000 + index))


async def test_unclear_reply_is_asked_again_with_the_buttons(harness: BotHarness) -> None:
    patient = await harness.consented_patient(4003, language="fr")
    await harness.advance_to(D7)
    await to_painkillers(patient, "fr")
    patient.say("des cachets")
    again = await question(patient)
    assert (again.text or "").startswith("Je n'ai pas bien compris")
    assert "Valider" in str(again.buttons())
    patient.tap(again, "Aucun")
    await patient.until("Noté : aucun antidouleur")


async def _evening_with_no_painkiller(patient: VirtualPatient) -> None:
    for label in ("3", "Non", "Non", "Non", "Un peu", "Aucun de ces signes", "Aucun"):
        await tap(patient, label)
    for _ in range(5):
        await tap(patient, "La plupart du temps")
    await patient.until("Prochain point")


async def test_an_opioid_started_after_the_procedure_raises_a_review_card(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(4004, language="fr")
    await harness.advance_to(EVENING)
    await _evening_with_no_painkiller(patient)
    await harness.advance_to(D7)
    await to_painkillers(patient, "fr")
    patient.say("tramadol 3 jours")
    card = await harness.staff_message("Opioïde commencé après le geste")
    assert (card.text or "").startswith("🟠"), card.text
    assert "opioïde faible — 3 jours sur 7" in (card.text or "")
    await patient.until("infirmière")  # review advice: a nurse calls on the next working day


async def _pain_only(
    harness: BotHarness, patient: VirtualPatient, when: datetime, pain: int
) -> None:
    """At ``when``: answer only the check-in's pain question (the rest stays unanswered)."""
    await harness.advance_to(when)
    first = await patient.until("Voici votre point de suivi")  # skips the last check-in's rest
    patient.tap(first, str(pain))
    await patient.until(f"Noté : {pain}/10")
    await harness.settle()


async def test_relief_ending_at_month_3_raises_one_review_card(harness: BotHarness) -> None:
    patient = await harness.consented_patient(4005, language="fr", baseline=7)
    await _pain_only(harness, patient, D7, 3)  # relief: 4 points below baseline
    await _pain_only(harness, patient, W6, 2)
    await _pain_only(harness, patient, M3, 7)  # pain back at baseline...
    assert not [m for m in harness.server.sent(STAFF_CHAT) if "Soulagement" in (m.text or "")]
    await _pain_only(harness, patient, M6, 7)  # ... and again: relief ended at month 3
    card = await harness.staff_message("Soulagement qui s'estompe")
    assert "soulagement qui s'estompe au mois 3" in (card.text or "")
    assert "nouveau geste" in (card.text or "")

    async def one_card() -> None:
        cards = [m for m in harness.server.sent(STAFF_CHAT) if "Soulagement" in (m.text or "")]
        assert len(cards) == 1

    await eventually(one_card)


async def _staff(
    harness: BotHarness, text: str, needle: str, kind: str | None = None
) -> SentMessage:
    sent = harness.server.send_text(NURSE, text, chat_id=STAFF_CHAT)
    after = sent["message"]["message_id"]
    return await harness.server.wait_for(
        lambda m: (
            m.chat_id == STAFF_CHAT
            and m.message_id > after
            and needle in (m.text or "")
            and (kind is None or m.kind == kind)
        )
    )


async def test_staff_see_painkillers_relief_and_the_outcomes(harness: BotHarness) -> None:
    patient = await harness.consented_patient(4006, language="fr", baseline=7)
    await harness.advance_to(EVENING)
    await _evening_with_no_painkiller(patient)
    await harness.advance_to(D7)
    await tap(patient, "3")  # relief: 4 points below baseline
    for label in BEFORE_PAINKILLERS["fr"][1:]:
        await tap(patient, label)
    patient.say("ixprim 2 jours")
    await patient.until("Noté : paracétamol, opioïde faible — 2 jours sur 7")
    await harness.settle()

    timeline = await _staff(harness, "/patient P-001", "P-001 · genou gauche")
    text = timeline.text or ""
    assert (
        "Antalgiques : avant le geste aucun antidouleur · J+7 paracétamol, opioïde faible — 2 jours sur 7"
        in text
    )
    assert "Soulagement : depuis J+7, maintenu (dernière réponse J+7)" in text

    summary = await _staff(harness, "/outcomes", "Résultats — tous les suivis")
    assert "Tous les patients — n = 1" in (summary.text or "")
    assert "d7: douleur -4 [-4; -4] (n = 1)" in (summary.text or "")
    figure = await harness.server.wait_for(
        lambda m: (
            m.chat_id == STAFF_CHAT and m.message_id > summary.message_id and m.kind == "photo"
        )
    )
    assert figure.file_bytes is not None and figure.file_bytes[:8] == b"\x89PNG\r\n\x1a\n"
