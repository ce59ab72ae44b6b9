"""What staff read, in the staff language (STAFF_LANGUAGE, fr or en) whatever the patient's:
alert cards in words (question labels, never ids, no line said twice), the morning digest
counting only the alerts nobody took, staff commands and notices, and a patient's knee photo
that reaches the staff chat (a reply to the card it illustrates; never lost to a failing chat).

Every test runs for a French-speaking team and for an English-speaking one; the patients speak
the other language, so a text in the patient's language where the staff's was due shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import OwedMessage
from bot.sandbox.fake_api import SentMessage
from bot.sandbox.fake_api.files import TINY_PNG
from tests.harness import (
    NURSE,
    PARIS,
    STAFF_CHAT,
    BotHarness,
    Patient,
    TestDatabase,
    eventually,
    question,
)

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
DAY1 = datetime(2026, 12, 2, 10, 0, tzinfo=PARIS)


@dataclass(frozen=True)
class Words:
    """What a team reads in its language (and the patient, in the other one)."""

    staff: str
    patient: str
    day0: str
    day1: str
    average_pain_9: str
    evening_pain_9: str
    calf_title: str
    calf_flag: str
    acknowledge: str
    no_urgent_open: str
    photo_caption: str
    photo_listed: str
    stop_notice: str
    enrol_first: str
    cancel: str
    cancelled: str
    no_alert: str
    missed_title: str
    last_answer: str
    calf_text: str
    fever_caption: str


FRENCH_TEAM = Words(
    staff="fr",
    patient="en",
    day0="J+0",
    day1="J+1",
    average_pain_9="Douleur moyenne (24 h) 9/10",
    evening_pain_9="Douleur le soir du geste 9/10",
    calf_title="Mollet douloureux ou gonflé (phlébite à éliminer)",
    calf_flag="Mollet douloureux ou gonflé",
    acknowledge="Je prends",
    no_urgent_open="Alertes urgentes ouvertes : aucune",
    photo_caption="📷 P-001 · J+0 — photo envoyée par le patient",
    photo_listed="J+0 — une photo « my knee »",
    stop_notice="a arrêté le suivi",
    enrol_first="Nouveau patient (1/",
    cancel="Annuler",
    cancelled="Annulé",
    no_alert="Aucune alerte ouverte.",
    missed_title="Deux suivis de suite sans réponse",
    last_answer="dernière réponse J+0",
    calf_text="my calf is swollen and painful",
    fever_caption="I have a fever",
)
ENGLISH_TEAM = Words(
    staff="en",
    patient="fr",
    day0="D+0",
    day1="D+1",
    average_pain_9="Average pain (24 h) 9/10",
    evening_pain_9="Pain on the evening of the procedure 9/10",
    calf_title="Painful or swollen calf (DVT must be excluded)",
    calf_flag="Calf painful or swollen",
    acknowledge="Acknowledge",
    no_urgent_open="Open urgent alerts: none",
    photo_caption="📷 P-001 · D+0 — photo sent by the patient",
    photo_listed="D+0 — a photo “mon genou”",
    stop_notice="stopped the follow-up",
    enrol_first="New patient (1/",
    cancel="Cancel",
    cancelled="Cancelled",
    no_alert="No open alert.",
    missed_title="Two check-ins in a row unanswered",
    last_answer="last answer D+0",
    calf_text="j'ai mal au mollet, il est gonflé",
    fever_caption="j'ai de la fièvre",
)
#: The patient's caption of the plain photo, in the patient's language.
MY_KNEE = {"en": "my knee", "fr": "mon genou"}


@pytest.fixture(params=[FRENCH_TEAM, ENGLISH_TEAM], ids=["fr-team", "en-team"])
def words(request: pytest.FixtureRequest) -> Words:
    """The team's language and what it reads."""
    result: Words = request.param
    return result


@pytest.fixture
async def team(database: TestDatabase, tmp_path: Path, words: Words) -> AsyncIterator[BotHarness]:
    """The bot with STAFF_LANGUAGE set to the team's language."""
    harness = BotHarness(database, tmp_path)
    harness.settings_overrides = {"staff_language": words.staff}
    async with harness as running:
        yield running


def _staff(harness: BotHarness) -> list[SentMessage]:
    return harness.server.sent(STAFF_CHAT)


async def _card(harness: BotHarness, needle: str) -> SentMessage:
    return await harness.staff_message(needle)


async def _staff_photo(harness: BotHarness, *, count: int = 1) -> list[SentMessage]:
    async def arrived() -> list[SentMessage]:
        photos = [m for m in _staff(harness) if m.kind == "photo"]
        assert len(photos) >= count
        return photos

    result: list[SentMessage] = await eventually(arrived)
    return result


def _assert_readable(card: SentMessage) -> None:
    """No internal id, and no line said twice."""
    text = card.text or ""
    for internal in ("pain_avg", "pain_evening", "pain_high", "calf_clot", "calf_tka", "R2"):
        assert internal not in text, text
    lines = text.splitlines()
    assert len(lines) == len(set(lines)), text


async def test_a_card_names_the_question_in_the_staff_language(
    team: BotHarness, words: Words
) -> None:
    patient = await team.consented_patient(language=words.patient)
    await team.advance_to(DAY1)
    patient.tap(await patient.until("24 h"), "9")

    card = await _card(team, words.average_pain_9)
    assert f"{words.average_pain_9} · {words.day1}" in (card.text or "")
    assert words.day1 in (card.text or "").splitlines()[0]
    assert words.acknowledge in [label for label, _data in card.buttons()]
    _assert_readable(card)


async def test_a_red_flag_card_does_not_repeat_its_title(team: BotHarness, words: Words) -> None:
    patient = await team.consented_patient(language=words.patient)
    patient.say(words.calf_text)

    card = await _card(team, words.calf_title)
    lines = (card.text or "").splitlines()
    assert lines[1] == words.calf_title
    bullets = [line for line in lines if line.startswith("• ")]
    assert bullets, card.text
    assert not [line for line in bullets if words.calf_flag in line], card.text
    _assert_readable(card)


async def test_a_silence_card_says_when_the_patient_last_answered_not_its_title_again(
    team: BotHarness, words: Words
) -> None:
    await team.consented_patient(language=words.patient)
    for moment in (EVENING, datetime(2026, 12, 1, 21, 0, tzinfo=PARIS), DAY1):
        await team.advance_to(moment)
    await team.advance_to(datetime(2026, 12, 2, 20, 30, tzinfo=PARIS))  # d1 window closed

    card = await _card(team, words.missed_title)
    lines = (card.text or "").splitlines()
    assert lines[1] == words.missed_title
    assert [line for line in lines if line.startswith("• ")] == [f"• {words.last_answer}"]
    _assert_readable(card)


async def test_the_digest_counts_only_the_alerts_nobody_took(
    team: BotHarness, words: Words
) -> None:
    patient = await team.consented_patient(language=words.patient)
    await team.advance_to(EVENING)
    patient.tap(await patient.until("10"), "9")
    evening = await _card(team, words.evening_pain_9)
    patient.say(words.calf_text)
    calf = await _card(team, words.calf_title)
    for card in (evening, calf):
        team.server.press_button(
            NURSE, card.message_id, card.button_data(words.acknowledge), chat_id=STAFF_CHAT
        )
        await team.server.wait_for(
            lambda m, card=card: m.message_id == card.message_id and "Claire" in (m.text or "")
        )

    await team.advance_to(datetime(2026, 12, 2, 8, 31, tzinfo=PARIS))  # Wednesday's digest
    digest = await team.staff_message(words.no_urgent_open)
    assert words.no_urgent_open in (digest.text or "")


async def test_a_photo_reaches_staff_with_label_and_day_and_is_listed(
    team: BotHarness, words: Words
) -> None:
    patient = await team.consented_patient(language=words.patient)
    picture = TINY_PNG + b"knee"
    team.server.send_photo(patient.user_id, file_bytes=picture, caption=MY_KNEE[words.patient])

    (photo,) = await _staff_photo(team)
    assert (photo.text or "").splitlines()[0] == words.photo_caption
    assert photo.file_bytes == picture
    assert photo.reply_to_message_id is None  # nothing worrying: no card to attach it to

    sent = team.server.send_text(NURSE, "/patient P-001", chat_id=STAFF_CHAT)
    course = await team.server.wait_for(
        lambda m: (
            m.chat_id == STAFF_CHAT
            and m.message_id > sent["message"]["message_id"]
            and "P-001" in (m.text or "")
        )
    )
    assert words.photo_listed in (course.text or ""), course.text
    assert "📷" in (course.text or "")


async def test_a_photo_with_a_worrying_caption_is_a_reply_to_its_card(
    team: BotHarness, words: Words
) -> None:
    patient = await team.consented_patient(language=words.patient)
    team.server.send_photo(patient.user_id, caption=words.fever_caption)

    (photo,) = await _staff_photo(team)
    cards = [m for m in _staff(team) if m.buttons() and m.message_id < photo.message_id]
    assert len(cards) == 1, [m.describe() for m in _staff(team)]
    assert photo.reply_to_message_id == cards[0].message_id
    assert (photo.text or "").startswith(words.photo_caption)


async def test_a_checkin_photo_after_a_high_pain_is_a_reply_to_the_pain_card(
    team: BotHarness, words: Words
) -> None:
    patient = await team.consented_patient(language=words.patient)
    await team.advance_to(datetime(2026, 12, 3, 10, 0, tzinfo=PARIS))  # d2: pain ... photo
    patient.tap(await patient.until("24 h"), "9")
    card = await _card(team, "9/10")
    french = words.patient == "fr"
    patient.tap(await question(patient), "Pas du tout" if french else "Not at all")  # swelling
    patient.tap(await question(patient), "Non" if french else "No")  # burning or electric skin
    patient.tap(await question(patient), "Aucun de ces signes" if french else "None of these")
    await patient.until("photo")
    team.server.send_photo(patient.user_id)

    (photo,) = await _staff_photo(team)
    assert photo.reply_to_message_id == card.message_id
    assert words.day0.replace("0", "2") in (photo.text or "")


async def test_a_photo_waits_out_a_failing_staff_chat(team: BotHarness, words: Words) -> None:
    patient = await team.consented_patient(language=words.patient)
    team.server.inject_fault("500", method="sendPhoto", chat_id=STAFF_CHAT, count=1)
    team.server.send_photo(patient.user_id)
    await team.settle()

    async def owed_for_later() -> None:
        async with team.ctx.sessions() as session:
            (row,) = list(
                await session.scalars(select(OwedMessage).where(OwedMessage.chat_id == STAFF_CHAT))
            )
        assert row.sent_at is None and row.next_attempt_at is not None

    await eventually(owed_for_later)
    assert [m for m in _staff(team) if m.kind == "photo"] == []

    await team.advance_to(team.clock.now() + timedelta(seconds=10))
    photos = await _staff_photo(team)
    await team.advance_to(team.clock.now() + timedelta(minutes=10))
    assert len([m for m in _staff(team) if m.kind == "photo"]) == len(photos) == 1


async def test_patient_notices_and_staff_replies_are_in_the_staff_language(
    team: BotHarness, words: Words
) -> None:
    patient: Patient = await team.consented_patient(language=words.patient)
    patient.say("/stop")
    confirm = await question(patient)
    patient.tap(confirm, "Oui" if words.patient == "fr" else "Yes")
    notice = await team.staff_message(words.stop_notice)
    assert "P-001" in (notice.text or "")


async def test_staff_commands_and_dialogs_answer_in_the_staff_language(
    team: BotHarness, words: Words
) -> None:
    async def reply_to(text: str) -> SentMessage:
        sent = team.server.send_text(NURSE, text, chat_id=STAFF_CHAT)
        return await team.server.wait_for(
            lambda m: m.chat_id == STAFF_CHAT and m.message_id > sent["message"]["message_id"]
        )

    assert (await reply_to("/alerts")).text == words.no_alert
    first = await reply_to("/enroll")
    assert (first.text or "").startswith(words.enrol_first)
    team.server.press_button(
        NURSE, first.message_id, first.button_data(words.cancel), chat_id=STAFF_CHAT
    )
    await team.server.wait_for(
        lambda m: m.message_id == first.message_id and (m.text or "").startswith(words.cancelled)
    )
