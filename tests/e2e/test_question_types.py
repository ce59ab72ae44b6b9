"""Every question type end to end, through python-telegram-bot and the fake Telegram server, in
French and English, answered with the buttons and with free text: the 0-10 scale, yes/no,
single choice, the red-flag checklist with "none of these", free text, the optional photo (with
its local copy and size limit), KOOS JR (scored) and PGIC at 6 weeks, 3 and 6 months."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import Answer, CheckIn, Episode
from bot.domain.scores import koos_jr_interval
from bot.sandbox.fake_api import TINY_PNG, SentMessage
from tests.harness import PARIS, STAFF_CHAT, BotHarness, eventually, question
from tests.harness import Patient as VirtualPatient

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
DAY1 = datetime(2026, 12, 2, 10, 0, tzinfo=PARIS)
DAY2 = datetime(2026, 12, 3, 10, 0, tzinfo=PARIS)
WHEN = {
    "w6": datetime(2027, 1, 12, 10, 0, tzinfo=PARIS),
    "m3": datetime(2027, 3, 1, 10, 0, tzinfo=PARIS),
    "m6": datetime(2027, 6, 1, 10, 0, tzinfo=PARIS),
}


async def finish_evening(patient: VirtualPatient, language: str) -> None:
    """The baseline questions that close the evening check-in: no painkiller, WHO-5."""
    french = language == "fr"
    await tap(patient, "Aucun" if french else "None")
    for _ in range(5):
        await tap(patient, "La plupart du temps" if french else "Most of the time")


async def tap(patient: VirtualPatient, label: str) -> SentMessage:
    """Wait for the next question and tap the button labelled exactly ``label``."""
    message = await question(patient)
    labels = [text for text, _ in message.buttons()]
    assert label in labels, (label, labels, message.text)
    data = dict(message.buttons())[label]
    patient.server.press_button(patient.user_id, message.message_id, data)
    return message


async def type_answer(patient: VirtualPatient, text: str) -> SentMessage:
    """Wait for the next question and type ``text``."""
    message = await question(patient)
    patient.say(text)
    return message


async def rows(harness: BotHarness, question_id: str) -> list[Answer]:
    async with harness.ctx.sessions() as session:
        return list(
            await session.scalars(
                select(Answer).where(Answer.question_id == question_id).order_by(Answer.id)
            )
        )


async def the_answer(harness: BotHarness, question_id: str) -> Answer:
    found = await rows(harness, question_id)
    assert len(found) == 1, [(a.kind, a.raw_text, a.status) for a in found]
    return found[0]


async def test_evening_check_in_with_buttons_in_french(harness: BotHarness) -> None:
    patient = await harness.consented_patient(3001, language="fr")
    await harness.advance_to(EVENING)
    first = await tap(patient, "3")
    assert [label for label, _ in first.buttons()] == [str(n) for n in range(11)]
    assert "douleur" in (first.text or "")
    await patient.until("Noté : 3/10")
    bleeding = await tap(patient, "Non")
    assert [label for label, _ in bleeding.buttons()] == ["Oui", "Non"]
    await tap(patient, "Non")
    await tap(patient, "Non")
    swelling = await tap(patient, "Un peu")
    assert [label for label, _ in swelling.buttons()] == [
        "Pas du tout",
        "Un peu",
        "Moyennement",
        "Beaucoup",
    ]
    await patient.until("Noté : Un peu")
    checklist = await question(patient)
    labels = [label for label, _ in checklist.buttons()]
    assert labels[-2:] == ["Aucun de ces signes", "Valider"]
    assert all(label.startswith("☐ ") for label in labels[:-2])
    # Tick two signs, untick one: the same message is edited in place each time.
    patient.tap(checklist, "Cloques")
    await harness.server.wait_for(
        lambda m: m.message_id == checklist.message_id and "☑ Cloques" in str(m.buttons())
    )
    patient.tap(checklist, "Mollet")
    await harness.server.wait_for(
        lambda m: m.message_id == checklist.message_id and "☑ Mollet" in str(m.buttons())
    )
    patient.tap(checklist, "Cloques")
    await harness.server.wait_for(
        lambda m: m.message_id == checklist.message_id and "☐ Cloques" in str(m.buttons())
    )
    patient.tap(checklist, "Valider")
    await patient.until("vérifié aujourd'hui")
    await finish_evening(patient, "fr")
    await patient.until("Prochain point")

    assert (await the_answer(harness, "pain_evening")).value == 3
    assert (await the_answer(harness, "bleeding")).option_id == "no"
    swelling_row = await the_answer(harness, "swelling")
    assert (swelling_row.option_id, swelling_row.value, swelling_row.kind) == ("mild", 1, "button")
    assert (await the_answer(harness, "flags_day0")).flags == ["R2"]
    await harness.staff_message("Mollet")
    async with harness.ctx.sessions() as session:
        checkin = await session.scalar(select(CheckIn).where(CheckIn.def_id == "d0_evening"))
        assert checkin is not None and checkin.status == "answered"


async def test_evening_check_in_typed_in_english(harness: BotHarness) -> None:
    patient = await harness.consented_patient(3002, language="en")
    await harness.advance_to(EVENING)
    await type_answer(patient, "about 3 I'd say")
    await patient.until("Noted: 3/10")
    await type_answer(patient, "nope")
    await patient.until("Noted: No")
    await type_answer(patient, "no")
    await type_answer(patient, "no they're fine")
    await type_answer(patient, "a bit swollen")
    await patient.until("Noted: A little")
    checklist = await type_answer(patient, "none of these")
    assert "Done" in [label for label, _ in checklist.buttons()]
    await finish_evening(patient, "en")
    await patient.until("Thank you, that is all for today")

    pain = await the_answer(harness, "pain_evening")
    assert (pain.value, pain.raw_text, pain.kind) == (3, "about 3 I'd say", "text")
    assert (await the_answer(harness, "bleeding")).value == 0
    assert (await the_answer(harness, "swelling")).option_id == "mild"
    none = await the_answer(harness, "flags_day0")
    assert (none.flags, none.status, none.raw_text) == ([], "ok", "none of these")
    assert harness.server.sent(STAFF_CHAT) == []


async def test_unclear_answer_is_asked_again_once_with_hint_and_buttons(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(3003, language="fr")
    await harness.advance_to(EVENING)
    await type_answer(patient, "bof")
    again = await question(patient)
    assert (again.text or "").startswith("Je n'ai pas bien compris")
    assert len(again.buttons()) == 11
    patient.say("ça dépend")
    bleeding = await question(patient)
    assert "Du sang traverse-t-il encore le pansement" in (bleeding.text or "")
    attempts = await rows(harness, "pain_evening")
    assert [(a.status, a.raw_text, a.value) for a in attempts] == [
        ("unclear", "bof", None),
        ("unclear", "ça dépend", None),
    ]


async def test_checklist_needs_a_tick_or_none_of_these(harness: BotHarness) -> None:
    patient = await harness.consented_patient(3004, language="en")
    await harness.advance_to(EVENING)
    for label in ("2", "No", "No", "No", "Not at all"):
        await tap(patient, label)
    checklist = await question(patient)
    patient.tap(checklist, "Done")
    for _ in range(200):
        toasts = [str(a.get("text")) for a in harness.server.callback_answers]
        if any("None of these" in text for text in toasts):
            break
        await _pause()
    else:
        raise AssertionError(harness.server.callback_answers)
    patient.tap(checklist, "None of these")
    await finish_evening(patient, "en")
    await patient.until("Next check-in")
    answer = await the_answer(harness, "flags_day0")
    assert (answer.flags, answer.option_id) == ([], "none")


async def _pause() -> None:
    await asyncio.sleep(0.02)


async def test_free_text_question_and_skip(harness: BotHarness) -> None:
    en = await harness.consented_patient(3005, language="en", label="P-EN")
    fr = await harness.consented_patient(3006, language="fr", label="P-FR")
    await harness.advance_to(DAY1)  # the evening check-in is missed: day 1 comes next
    for text in ["2", "3", "no", "no", "normally", "none"]:
        await type_answer(en, text)
    for label in ("2", "3", "Pas du tout", "Non", "Normalement", "Aucun de ces signes"):
        await tap(fr, label)
    comment = await type_answer(en, "The knee feels much better, thank you")
    assert "Skip" in [label for label, _ in comment.buttons()]
    await en.until("Thank you, that is all for today")
    await tap(fr, "Passer")
    await fr.until("Merci, c'est tout pour aujourd'hui")
    comments = await rows(harness, "comment")
    assert sorted((a.status, a.raw_text or "") for a in comments) == [
        ("ok", "The knee feels much better, thank you"),
        ("skip", ""),
    ]
    walking = [a for a in await rows(harness, "walking") if a.kind == "text"]
    assert [(a.option_id, a.raw_text) for a in walking] == [("normal", "normally")]


@pytest.mark.parametrize(("language", "how"), [("fr", "photo"), ("en", "skip_typed")])
async def test_optional_photo_stored_with_local_copy_or_skipped(
    harness: BotHarness, language: str, how: str
) -> None:
    patient = await harness.consented_patient(3007, language=language)
    await harness.advance_to(DAY2)
    none = "Aucun de ces signes" if language == "fr" else "None of these"
    no = "Non" if language == "fr" else "No"  # burning skin sensations (V2, from day 2)
    for label in ("1", "Pas du tout" if language == "fr" else "Not at all", no, none):
        await tap(patient, label)
    photo_question = await question(patient)
    assert [label for label, _ in photo_question.buttons()] == [
        "Passer" if language == "fr" else "Skip"
    ]
    if how == "skip_typed":
        patient.say("skip")
        await patient.until("Thank you, that is all for today")
        assert (await the_answer(harness, "skin_photo")).status == "skip"
        return
    picture = TINY_PNG + b"knee"
    harness.server.send_photo(patient.user_id, file_bytes=picture, caption="mon genou")
    await patient.until("photo est enregistrée")
    await patient.until("Merci, c'est tout pour aujourd'hui")
    answer = await the_answer(harness, "skin_photo")
    assert (answer.kind, answer.raw_text, answer.status) == ("photo", "mon genou", "ok")
    assert answer.file_id and answer.file_path
    copy = Path(answer.file_path)
    assert await asyncio.to_thread(copy.read_bytes) == picture
    assert copy.is_relative_to(harness.tmp_path / "media")
    assert "P-001" not in str(copy)


async def test_photo_over_the_size_limit_keeps_only_the_file_id(harness: BotHarness) -> None:
    await harness.stop_bot()
    harness.settings_overrides = {"media_max_bytes": 100}
    await harness.start_bot()
    patient = await harness.consented_patient(3008, language="fr")
    harness.server.send_photo(patient.user_id, file_bytes=b"\xff\xd8" + b"x" * 500)
    await patient.until("photo est enregistrée")
    async with harness.ctx.sessions() as session:
        (note,) = list(await session.scalars(select(Answer).where(Answer.kind == "photo")))
    assert note.file_id and note.file_path is None
    assert not (harness.tmp_path / "media").exists()


KOOS_ITEMS = [2, 1, 0, 1, 1, 1, 1]


async def _answer_after_pain(
    patient: VirtualPatient, checkin: str, language: str, how: str
) -> None:
    """Answer a 6-week/3-month/6-month check-in after its pain question."""
    french = language == "fr"
    koos_fr = ["Aucune", "Légère", "Modérée", "Sévère", "Extrême"]
    koos_en = ["None", "Mild", "Moderate", "Severe", "Extreme"]
    if how == "buttons":
        labels = [] if checkin == "w6" else ["Non" if french else "No"]
        labels += [(koos_fr if french else koos_en)[value] for value in KOOS_ITEMS]
        labels += [("La plupart du temps" if french else "Most of the time")] * 5  # WHO-5
        labels += ["Aucun" if french else "None"]  # painkillers
        labels += ["Nettement amélioré" if french else "Much improved"]
        labels += [] if checkin == "m3" else ["Très satisfait(e)" if french else "Very satisfied"]
        labels += ["Oui" if french else "Yes"] if checkin == "m6" else []
        labels += ["Passer" if french else "Skip"]
        for label in labels:
            await tap(patient, label)
        return
    typed = [] if checkin == "w6" else ["non" if french else "no"]
    typed += [(koos_fr if french else koos_en)[value].lower() for value in KOOS_ITEMS]
    typed += ["souvent" if french else "mostly"] * 5  # WHO-5
    typed += ["rien" if french else "nothing"]  # painkillers
    typed += ["beaucoup mieux" if french else "much better"]
    typed += [] if checkin == "m3" else ["satisfait" if french else "satisfied"]
    typed += ["oui" if french else "yes please"] if checkin == "m6" else []
    typed += ["rien à ajouter" if french else "nothing to add"]
    for text in typed:
        await type_answer(patient, text)


@pytest.mark.parametrize(
    ("checkin", "language", "how"),
    [("w6", "fr", "buttons"), ("m3", "en", "text"), ("m6", "fr", "text")],
)
async def test_koos_jr_scored_and_pgic_saved_at_later_time_points(
    harness: BotHarness, checkin: str, language: str, how: str
) -> None:
    patient = await harness.consented_patient(3010, language=language)
    await harness.advance_to(WHEN[checkin])
    first = await question(patient)
    assert "KOOS" not in (first.text or "")
    patient.tap(first, "2")
    await _answer_after_pain(patient, checkin, language, how)
    last = "dernier point" if language == "fr" else "last check-in"
    closing = "Merci, c'est tout" if language == "fr" else "Thank you, that is all"
    await patient.until(last if checkin == "m6" else closing)

    score = await the_answer(harness, "koos_jr_score")
    exact = koos_jr_interval(KOOS_ITEMS)
    assert exact == pytest.approx(68.284)
    assert (score.kind, score.value, score.score) == ("score", 68, pytest.approx(exact))
    pgic = await the_answer(harness, "pgic")
    assert (pgic.value, pgic.option_id) == (2, "much_improved")
    koos_rows = [await the_answer(harness, f"koos_{n}") for n in range(1, 8)]
    assert [row.value for row in koos_rows] == KOOS_ITEMS
    assert {row.kind for row in koos_rows} == {"button" if how == "buttons" else "text"}
    async with harness.ctx.sessions() as session:
        assert score.checkin_id == await session.scalar(
            select(CheckIn.id).where(CheckIn.def_id == checkin)
        )
        if checkin == "m6":
            episode = await session.scalar(select(Episode))
            assert episode is not None and episode.status == "completed"


async def test_koos_jr_item_not_understood_gives_no_score(harness: BotHarness) -> None:
    patient = await harness.consented_patient(3011, language="en")
    await harness.advance_to(WHEN["w6"])
    for text in ["2", "none", "whatever", "dunno", "mild", "mild", "mild", "mild", "mild"]:
        await type_answer(patient, text)
    who5 = await question(patient)
    assert "WHO-5" in (who5.text or "")
    assert await rows(harness, "koos_jr_score") == []
    statuses = [a.status for a in await rows(harness, "koos_2")]
    assert statuses == ["unclear", "unclear"]

    async def no_score() -> None:
        assert await rows(harness, "koos_jr_score") == []

    await eventually(no_score)
