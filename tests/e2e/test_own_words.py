"""Typed answers read against their own words, through the fake Telegram server (issue 14).

* A yes/no answer that reports its red flag or contradicts itself ("no, it keeps bleeding",
  "non, ça ne s'arrête pas") is read as the flag or asked again ONCE with buttons: never
  saved as "No".
* A number with a red flag ("5 but I have a fever of 38.5") saves the number and raises the
  flag, without "I did not understand" first.
* One worrying reply ("je dirais 9 sur 10, c'est insupportable") gets one piece of advice and
  one staff card, however many rules it meets.
* "Is that normal?" about an expected effect gets the protocol's own text and when to call;
  the message is still saved and read for red flags (a red flag is never "normal").

Each case is played in both languages, with the wordings seen with a real client and paraphrases.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from bot.db.models import Alert, Answer, Episode
from bot.db.models import Patient as PatientRow
from tests.e2e.test_staff_commands import command
from tests.harness import PARIS, STAFF_CHAT, BotHarness, Patient, eventually, question

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
URGENT = {"fr": "vérifié aujourd'hui", "en": "checked today"}
YES = {"fr": "Oui", "en": "Yes"}
NOTED_NO = {"fr": "Noté : Non.", "en": "Noted: No."}
NOT_UNDERSTOOD = {"fr": "pas bien compris", "en": "did not understand"}

#: Replies to the bleeding question whose words report the bleeding, whatever the answer word.
BLEEDING_REPLIES = {
    "en": [
        "no, it won't stop",
        "no it keeps bleeding",
        "no, it's still bleeding",
        "nope, still coming through",
        "no, it hasn't stopped",
        "no the dressing is soaked",
        "no, it keeps going",
        "no it never stops",
    ],
    "fr": [
        "non, ça ne s'arrête pas",
        "non ça saigne toujours",
        "non, ça saigne encore",
        "non ça continue",
        "non, le pansement est trempé",
        "non, ça ne s'arrête toujours pas",
        "non il saigne toujours",
        "non, toujours",
    ],
}
#: Plain noes, which stay noes.
PLAIN_NOES = {
    "en": ["no", "no, it has stopped", "no, all good"],
    "fr": ["non", "non, ça ne saigne plus", "non ça va"],
}
#: A pain score typed together with a fever.
SCORE_AND_FEVER = {
    "en": [
        "5 but I have a fever of 38.5",
        "5, and my temperature is 38.7",
        "about 5 but fever 39",
        "5/10 but I've got a temperature of 38.5",
        "five, though I have a fever of 38.9",
        "5 - temp 39.2 this morning",
    ],
    "fr": [
        "5 mais j'ai 38,5 de fièvre",
        "5, et j'ai de la fièvre à 38,7",
        "environ 5 mais 39 de fièvre",
        "5/10 mais température 38,5",
        "cinq, mais j'ai 38.9 de température",
        "douleur 5, fièvre 39,2 ce matin",
    ],
}
#: A high pain score that also says the pain is much worse (two rules, one reply).
HIGH_AND_WORSE = {
    "fr": [
        "je dirais 9 sur 10, c'est insupportable",
        "9/10, insupportable",
        "neuf, c'est atroce",
        "9 sur 10 et rien ne soulage",
        "10, je pleure de douleur",
        "9, c'est bien pire qu'avant",
    ],
    "en": [
        "I'd say 9 out of 10, it's unbearable",
        "9/10, excruciating",
        "nine, nothing helps",
        "10 out of 10, I'm in agony",
        "9, much worse than before",
        "9 and the painkillers don't work",
    ],
}
#: Questions about an expected effect, and a few words of the protocol's answer to each.
ASKING_WHAT_IS_NORMAL = {
    "en": [
        ("…the skin below the kneecap feels numb, is that normal?", "intended effect"),
        ("numb patch below kneecap, normal?", "intended effect"),
        ("I can't feel the skin under my kneecap, is that expected?", "intended effect"),
        ("tingling below the knee cap, is it normal?", "intended effect"),
        ("my knee is a bit swollen, is that normal?", "Some swelling"),
        ("there's a big bruise around the needle marks, should I worry?", "most frequent"),
        ("the skin around my knee feels cold, is that ok?", "feel cool"),
    ],
    "fr": [
        ("…la peau sous la rotule est engourdie, c'est normal ?", "effet recherché"),
        ("zone engourdie sous la rotule, normal ?", "effet recherché"),
        ("j'ai des fourmillements sous le genou, est-ce normal ?", "effet recherché"),
        ("je ne sens plus la peau sous la rotule, c'est normal ?", "effet recherché"),
        ("le genou est un peu gonflé, c'est normal ?", "Un peu de gonflement"),
        ("j'ai un gros bleu autour des piqûres, dois-je m'inquiéter ?", "le plus fréquent"),
        ("la peau du genou est froide, c'est grave ?", "sembler fraîche"),
    ],
}


async def _patients(
    harness: BotHarness, language: str, count: int, *, first: int
) -> list[tuple[str, Patient]]:
    """``count`` consented patients, labelled P-<user id>."""
    enrolled = []
    for user_id in range(first, first + count):
        label = f"P-{user_id}"
        patient = await harness.consented_patient(user_id, language=language, label=label)
        enrolled.append((label, patient))
    return enrolled


async def _at_bleeding_question(harness: BotHarness, patients: list[tuple[str, Patient]]) -> None:
    """The evening check-in: each patient taps a pain of 3 and is asked about bleeding."""
    await harness.advance_to(EVENING)
    for _label, patient in patients:
        patient.tap(await question(patient), "3")
        bleeding = await question(patient)
        assert "pansement" in (bleeding.text or "") or "dressing" in (bleeding.text or "")


async def _answers_of(harness: BotHarness, label: str) -> list[Answer]:
    async with harness.ctx.sessions() as session:
        return list(
            await session.scalars(
                select(Answer)
                .join(Episode, Answer.episode_id == Episode.id)
                .join(PatientRow, Episode.patient_id == PatientRow.id)
                .where(PatientRow.label == label)
                .order_by(Answer.id)
            )
        )


async def _alerts_of(harness: BotHarness, label: str) -> list[Alert]:
    async with harness.ctx.sessions() as session:
        return list(
            await session.scalars(
                select(Alert)
                .join(Episode, Alert.episode_id == Episode.id)
                .join(PatientRow, Episode.patient_id == PatientRow.id)
                .where(PatientRow.label == label)
                .order_by(Alert.id)
            )
        )


def _cards(harness: BotHarness, label: str) -> list[str]:
    return [
        m.text or "" for m in harness.server.sent(STAFF_CHAT) if f"— {label} ·" in (m.text or "")
    ]


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_a_no_that_reports_the_bleeding_is_never_saved_as_no(
    harness: BotHarness, language: str
) -> None:
    replies = BLEEDING_REPLIES[language]
    patients = await _patients(harness, language, len(replies), first=6100)
    await _at_bleeding_question(harness, patients)
    for (label, patient), reply in zip(patients, replies, strict=True):
        patient.say(reply)
        first = await patient.next()
        if first.buttons():
            # Asked again, once, with buttons: the reply said two things.
            assert [b for b, _ in first.buttons()] == [
                YES[language],
                "Non" if language == "fr" else "No",
            ], reply
            assert "oui et non" in (first.text or "") or "yes and no" in (first.text or ""), reply
            patient.tap(first, YES[language])
        await patient.until(URGENT[language])
        card = await harness.staff_message(f"— {label} ·")
        assert "Du sang traverse encore le pansement" in (card.text or ""), reply
        said = patient.all_texts()
        assert NOTED_NO[language] not in said, reply
        assert sum(1 for text in said if URGENT[language] in text) == 1, reply
        bleeding = [a for a in await _answers_of(harness, label) if a.question_id == "bleeding"]
        assert bleeding[-1].value == 1 and bleeding[-1].flags == ["R10"], reply
        assert all(a.status != "ok" or a.value != 0 for a in bleeding), reply
        assert [a.rule_id for a in await _alerts_of(harness, label)] == ["bleeding"], reply


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_a_plain_no_to_the_bleeding_question_stays_no(
    harness: BotHarness, language: str
) -> None:
    replies = PLAIN_NOES[language]
    patients = await _patients(harness, language, len(replies), first=6200)
    await _at_bleeding_question(harness, patients)
    for (label, patient), reply in zip(patients, replies, strict=True):
        patient.say(reply)
        assert (await patient.next()).text == NOTED_NO[language], reply
        toes = await question(patient)
        assert "orteils" in (toes.text or "") or "toes" in (toes.text or ""), reply
        assert await _alerts_of(harness, label) == [], reply


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_a_score_typed_with_a_fever_saves_the_score_and_raises_the_fever(
    harness: BotHarness, language: str
) -> None:
    replies = SCORE_AND_FEVER[language]
    patients = await _patients(harness, language, len(replies), first=6300)
    await harness.advance_to(EVENING)
    for (label, patient), reply in zip(patients, replies, strict=True):
        await question(patient)
        patient.say(reply)
        noted = await patient.next()
        assert noted.text == ("Noté : 5/10." if language == "fr" else "Noted: 5/10."), reply
        advice = await patient.next()
        assert URGENT[language] in (advice.text or ""), reply
        await question(patient)  # the check-in goes on: the bleeding question
        assert not [t for t in patient.all_texts() if NOT_UNDERSTOOD[language] in t], reply
        pain = [a for a in await _answers_of(harness, label) if a.question_id == "pain_evening"]
        assert [(a.value, a.status, a.raw_text) for a in pain] == [(5, "ok", reply)]
        assert [a.rule_id for a in await _alerts_of(harness, label)] == ["fever"], reply


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_one_worrying_reply_gets_one_advice_and_one_card(
    harness: BotHarness, language: str
) -> None:
    replies = HIGH_AND_WORSE[language]
    patients = await _patients(harness, language, len(replies), first=6400)
    await harness.advance_to(EVENING)
    for (label, patient), reply in zip(patients, replies, strict=True):
        await question(patient)
        patient.say(reply)
        await patient.until(URGENT[language])
        await question(patient)  # the bleeding question comes after the advice
        await harness.staff_message(f"— {label} ·")
    await harness.settle()
    await harness.tick()  # anything still pending for staff is delivered now
    for (label, patient), reply in zip(patients, replies, strict=True):
        said = patient.all_texts()
        assert sum(1 for text in said if URGENT[language] in text) == 1, reply
        (card,) = _cards(harness, label)
        # One card, headed by the pain rule, naming the second rule too.
        assert "Douleur ≥ 8/10 le soir du geste" in card, reply
        assert "Douleur bien pire qu'avant le geste" in card, reply
        (alert,) = await _alerts_of(harness, label)
        assert (alert.rule_id, alert.severity) == ("pain_high_evening", "urgent"), reply
        assert {item["rule_id"] for item in alert.evidence} == {
            "pain_high_evening",
            "pain_much_worse",
        }
    # The staff's list names both reasons too (it used to show only the heading rule).
    listing = await command(harness, "/alerts", needle="Alertes ouvertes")
    assert (listing.text or "").count(
        "Douleur ≥ 8/10 le soir du geste + Douleur bien pire qu'avant le geste"
    ) == len(replies)


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_a_more_pressing_sign_in_the_same_reply_heads_the_one_card(
    harness: BotHarness, language: str
) -> None:
    reply = "9/10 et je suis essoufflé" if language == "fr" else "9/10 and I'm short of breath"
    ((label, patient),) = await _patients(harness, language, 1, first=6500)
    await harness.advance_to(EVENING)
    await question(patient)
    patient.say(reply)
    await patient.until("15 (SAMU)")
    await question(patient)
    await harness.staff_message(f"— {label} ·")
    await harness.settle()
    await harness.tick()
    advice = [t for t in patient.all_texts() if "15 (SAMU)" in t]
    assert len(advice) == 1 and URGENT[language] not in advice[0]  # the emergency advice only
    (card,) = _cards(harness, label)
    assert card.startswith("🔴 URGENCE") or card.startswith("🔴 EMERGENCY")
    (alert,) = await _alerts_of(harness, label)
    assert (alert.rule_id, alert.severity) == ("chest_or_breath", "emergency")


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_is_that_normal_is_answered_from_the_protocol(
    harness: BotHarness, language: str
) -> None:
    questions = ASKING_WHAT_IS_NORMAL[language]
    patients = await _patients(harness, language, len(questions), first=6600)
    for (label, patient), (text, expected) in zip(patients, questions, strict=True):
        patient.say(text)
        answer = await patient.next()
        assert expected in (answer.text or ""), text
        assert "01 23 45 67 89" in (answer.text or ""), text  # when to call
        saved = await patient.next()
        assert "enregistré" in (saved.text or "") or "saved" in (saved.text or ""), text
        notes = [a.raw_text for a in await _answers_of(harness, label) if a.kind == "note"]
        assert notes == [text]
        assert await _alerts_of(harness, label) == [], text


#: Red flags asked about as if they were normal: never answered as normal.
RED_FLAG_IS_NEVER_NORMAL = {
    "en": [
        # a question makes a mention doubtful: the flag's own yes/no question is asked
        ("the skin is numb and there's a blister, is that normal?", "Do you see blisters"),
        ("numb, and I have a fever of 38.6, is that normal?", "checked today"),
        ("my whole foot is numb, is that normal?", "Has the numbness spread"),
        ("my toes are cold, is that normal?", "toes blue, purple or cold"),
    ],
    "fr": [
        ("la peau est engourdie et j'ai une cloque, c'est normal ?", "Voyez-vous des cloques"),
        ("c'est engourdi et j'ai 38,6 de fièvre, c'est normal ?", "vérifié aujourd'hui"),
        ("tout le pied est engourdi, c'est normal ?", "L'engourdissement s'étend"),
        ("mes orteils sont froids, c'est normal ?", "orteils sont-ils bleus"),
    ],
}


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_a_red_flag_is_never_answered_as_normal(harness: BotHarness, language: str) -> None:
    cases = RED_FLAG_IS_NEVER_NORMAL[language]
    patients = await _patients(harness, language, len(cases), first=6700)
    for (label, patient), (text, expected) in zip(patients, cases, strict=True):
        patient.say(text)
        reply = await patient.next()
        assert expected in (reply.text or ""), text

        async def saved(label: str = label, text: str = text) -> None:
            notes = [a.raw_text for a in await _answers_of(harness, label) if a.kind == "note"]
            assert notes == [text]

        await eventually(saved)
    await harness.settle()
    for _label, patient in patients:
        said = "\n".join(patient.all_texts())
        for marker in ("effet recherché", "intended effect", "sembler fraîche", "feel cool"):
            assert marker not in said
