"""What goes wrong in real life, through the fake Telegram server: an answer sent while the bot
is down, updates delivered twice, stale and forged buttons, a blocked bot, strangers, every kind
of message Telegram can carry, and a table of realistic free-text replies in both languages."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import func, select

from bot.db.models import Alert, Answer, AuditEvent, CheckIn, Episode, ProcessedUpdate
from bot.sandbox.fake_api import SentMessage
from tests.harness import PARIS, STAFF_CHAT, BotHarness, eventually, question
from tests.harness import Patient as VirtualPatient

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)


async def answers_to(harness: BotHarness, question_id: str) -> list[Answer]:
    async with harness.ctx.sessions() as session:
        return list(
            await session.scalars(
                select(Answer).where(Answer.question_id == question_id).order_by(Answer.id)
            )
        )


async def toast(harness: BotHarness, needle: str) -> dict[str, object]:
    """The callback answer (toast) containing ``needle``."""

    async def find() -> dict[str, object]:
        for answer in harness.server.callback_answers:
            if needle in str(answer.get("text") or ""):
                return answer
        raise AssertionError(f"no toast {needle!r} in {harness.server.callback_answers}")

    return await eventually(find)  # type: ignore[no-any-return]


async def barrier(patient: VirtualPatient) -> None:
    """Send /help and wait for its answer: a patient's updates are handled in order, so every
    update queued before it has been handled once this returns (no sleeping)."""
    patient.say("/help")
    await patient.until("/stop —")


async def test_an_answer_sent_while_the_bot_is_stopped_is_handled_after_restart(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(6001, language="fr")
    await harness.advance_to(EVENING)
    pain = await question(patient)
    await harness.stop_bot()
    patient.tap(pain, "3")  # waits in Telegram (the fake server) while the bot is down
    patient.say("non, le pansement ne saigne pas")
    await harness.start_bot()
    await patient.until("Noté : 3/10")
    bleeding = await question(patient)
    assert "Du sang traverse-t-il encore le pansement" in (bleeding.text or "")
    await patient.until("Noté : Non")
    assert [a.value for a in await answers_to(harness, "pain_evening")] == [3]
    (bleeding_answer,) = await answers_to(harness, "bleeding")
    assert (bleeding_answer.value, bleeding_answer.raw_text) == (
        0,
        "non, le pansement ne saigne pas",
    )


async def test_updates_delivered_twice_change_nothing(harness: BotHarness) -> None:
    patient = await harness.consented_patient(6002, language="en")
    await harness.advance_to(EVENING)
    await question(patient)
    typed = harness.server.send_text(patient.user_id, "4")
    await patient.until("Noted: 4/10")
    bleeding = await question(patient)
    pressed = patient.server.press_button(
        patient.user_id, bleeding.message_id, bleeding.button_data("No")
    )
    await patient.until("Noted: No")
    await question(patient)  # the toes question: everything the press caused has arrived
    replies = len(harness.server.sent(patient.user_id))
    harness.server.redeliver(typed["update_id"])
    harness.server.redeliver(pressed["update_id"])
    await barrier(patient)
    # Only the /help answer was added: the redelivered updates got no second reply.
    assert len(harness.server.sent(patient.user_id)) == replies + 1, [
        m.text for m in harness.server.sent(patient.user_id)[replies - 2 :]
    ]
    assert [a.value for a in await answers_to(harness, "pain_evening")] == [4]
    assert [a.value for a in await answers_to(harness, "bleeding")] == [0]
    async with harness.ctx.sessions() as session:
        seen = set(await session.scalars(select(ProcessedUpdate.update_id)))
    assert {typed["update_id"], pressed["update_id"]} <= seen


async def test_a_stale_button_is_answered_politely_and_changes_nothing(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(6003, language="fr")
    consent = harness.server.sent(patient.user_id)[0]
    await harness.advance_to(EVENING)
    pain = await question(patient)
    patient.tap(pain, "2")
    await patient.until("Noté : 2/10")
    patient.tap(pain, "9")  # the same old keyboard, pressed again
    await toast(harness, "Cette question est close")
    patient.tap(consent, "Je refuse")  # the consent of the first day
    await barrier(patient)
    assert [a.value for a in await answers_to(harness, "pain_evening")] == [2]
    async with harness.ctx.sessions() as session:
        found = await session.scalar(select(Episode))
        assert found is not None and found.status == "active"
        assert await session.scalar(select(func.count()).select_from(Alert)) == 0
    closed = [a for a in harness.server.callback_answers if "close" in str(a.get("text"))]
    assert len(closed) == 2


async def test_a_forged_button_for_another_patients_check_in_changes_nothing(
    harness: BotHarness,
) -> None:
    mallory = await harness.consented_patient(6004, language="en", label="P-M")
    victim = await harness.consented_patient(6005, language="en", label="P-V")
    await harness.advance_to(EVENING)
    own = await question(mallory)
    target = await question(victim)
    forged = target.button_data("9")  # a:<victim's check-in>:0:9
    harness.server.press_button(mallory.user_id, own.message_id, forged)
    await toast(harness, "This question is closed")
    harness.server.press_button(mallory.user_id, own.message_id, "a:not:a:button")
    harness.server.press_button(mallory.user_id, own.message_id, "b:99")
    await barrier(mallory)
    assert await answers_to(harness, "pain_evening") == []
    async with harness.ctx.sessions() as session:
        indexes = set(await session.scalars(select(CheckIn.question_index)))
        assert indexes == {0}
        assert await session.scalar(select(func.count()).select_from(Alert)) == 0


async def test_a_blocked_bot_alerts_staff_and_stops_sending(harness: BotHarness) -> None:
    patient = await harness.consented_patient(6006, language="fr")
    harness.server.block_bot(patient.user_id)
    await harness.advance_to(EVENING)
    card = await harness.staff_message("P-001")
    assert "bloqué" in (card.text or "")
    async with harness.ctx.sessions() as session:
        found = await session.scalar(select(Episode))
        checkin = await session.scalar(select(CheckIn).where(CheckIn.def_id == "d0_evening"))
        assert found is not None and found.blocked_at is not None
        assert checkin is not None and (checkin.status, checkin.status_reason) == (
            "cancelled",
            "blocked",
        )
    # Writing to the bot again unblocks it: the message is answered and sending resumes.
    patient.say("pardon, j'avais bloqué par erreur")
    await patient.until("votre message est enregistré")
    async with harness.ctx.sessions() as session:
        found = await session.scalar(select(Episode))
        assert found is not None and found.blocked_at is None
        assert await session.scalar(
            select(AuditEvent.id).where(AuditEvent.action == "bot_unblocked")
        )


async def test_someone_not_enrolled_is_always_told_how_to_enrol(harness: BotHarness) -> None:
    stranger = VirtualPatient(harness.server, 6007, "fr")
    stranger.say("bonjour, c'est pour le suivi du genou")
    reply = await stranger.next()
    assert "ouvrez le lien ou scannez le QR code" in (reply.text or "")
    harness.server.send_photo(stranger.user_id)
    harness.server.send_voice(stranger.user_id)
    stranger.say("/stop")
    for _ in range(3):
        assert "ouvrez le lien" in ((await stranger.next()).text or "")
    harness.server.press_button(stranger.user_id, reply.message_id, "a:1:0:5")
    await toast(harness, "Ce bouton n'est plus actif")
    async with harness.ctx.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Answer)) == 0
    assert harness.server.sent(STAFF_CHAT) == []


UNHEARD = ("voice", "video", "video_note", "audio")


def _send(harness: BotHarness, user_id: int, kind: str) -> None:
    server = harness.server
    file = {"file_id": f"F-{kind}", "file_unique_id": f"U-{kind}"}
    senders = {
        "voice": lambda: server.send_voice(user_id),
        "video": lambda: server.send_video(user_id),
        "sticker": lambda: server.send_sticker(user_id),
        "document": lambda: server.send_document(user_id, caption="compte rendu"),
        "location": lambda: server.send_location(user_id),
    }
    contents = {
        "video_note": {"video_note": {**file, "length": 240, "duration": 3}},
        "audio": {"audio": {**file, "duration": 5}},
        "animation": {
            "animation": {**file, "width": 1, "height": 1, "duration": 1},
            "document": file,
        },
        "contact": {"contact": {"phone_number": "+33600000000", "first_name": "Marie"}},
        "poll": {
            "poll": {
                "id": "1",
                "question": "?",
                "options": [{"persistent_id": "o1", "text": "a", "voter_count": 0}],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
        "dice": {"dice": {"emoji": "🎲", "value": 3}},
    }
    if kind in senders:
        senders[kind]()
    else:
        server.send_content(user_id, contents[kind])


@pytest.mark.parametrize("open_question", [True, False])
async def test_every_kind_of_message_gets_an_answer(
    harness: BotHarness, open_question: bool
) -> None:
    patient = await harness.consented_patient(6008, language="fr")
    if open_question:
        await harness.advance_to(EVENING)
        await question(patient)
    kinds = [*UNHEARD, "sticker", "document", "location", "contact", "poll", "dice", "animation"]
    for kind in kinds:
        _send(harness, patient.user_id, kind)
        reply = await patient.next()
        if kind in UNHEARD:
            assert "Je ne peux pas écouter" in (reply.text or ""), kind
        elif open_question:
            assert "touchez un bouton" in (reply.text or ""), kind
        else:
            assert "écrivez-le" in (reply.text or ""), kind
        if open_question:
            again = await patient.next()
            assert "douleur" in (again.text or "") and len(again.buttons()) == 11, kind
    forwards = [m for m in harness.server.sent(STAFF_CHAT) if m.kind == "forward"]
    assert len(forwards) == len(UNHEARD)
    card = await harness.staff_message("P-001")
    assert "écouter" in (card.text or "")
    async with harness.ctx.sessions() as session:
        rules = list(await session.scalars(select(Alert.rule_id)))
        saved = (
            await session.execute(
                select(Answer.kind, Answer.raw_text, Answer.file_id).where(
                    Answer.question_id.is_(None)
                )
            )
        ).all()
    assert rules == ["unheard_media"]  # one open alert, not one per voice note
    assert sorted(kind for kind, _, _ in saved) == sorted(kinds)
    by_kind = {kind: (text, file_id) for kind, text, file_id in saved}
    assert by_kind["location"] == (None, None)  # never the coordinates
    assert by_kind["contact"] == (None, None)  # never a shared phone number
    assert by_kind["document"][0] == "compte rendu"
    assert by_kind["voice"][1] and by_kind["sticker"][1]


@dataclass(frozen=True)
class Reply:
    """One realistic reply: where it is typed, what it says, what must be understood."""

    language: str
    before: tuple[str, ...]  # buttons tapped first, to reach the question
    text: str
    question_id: str
    value: int | None  # None: not understood, asked again with the hint and the buttons


FR_TO_BLEEDING = ("3",)
EN_TO_BLEEDING = ("3",)
FR_TO_SWELLING = ("3", "Non", "Non", "Non")
EN_TO_SWELLING = ("3", "No", "No", "No")

REPLIES = [
    Reply("fr", (), "7", "pain_evening", 7),
    Reply("fr", (), "sept", "pain_evening", 7),
    Reply("fr", (), "7/10", "pain_evening", 7),
    Reply("fr", (), "j'ai mal à 8", "pain_evening", 8),
    Reply("fr", (), "zéro douleur !!", "pain_evening", 0),
    Reply("fr", (), "je dirais 4 ça va mieux", "pain_evening", 4),
    Reply("fr", (), "6-7", "pain_evening", 7),
    Reply("fr", (), "trois", "pain_evening", 3),
    Reply("fr", (), "bof", "pain_evening", None),
    Reply("fr", (), "ok", "pain_evening", None),
    Reply("en", (), "pain 7/10", "pain_evening", 7),
    Reply("en", (), "about 6", "pain_evening", 6),
    Reply("en", (), "ten", "pain_evening", 10),
    Reply("en", (), "it's about a 5 today", "pain_evening", 5),
    Reply("en", (), "11", "pain_evening", None),
    Reply("en", (), "dunno", "pain_evening", None),
    Reply("fr", FR_TO_BLEEDING, "ouais", "bleeding", 1),
    Reply("fr", FR_TO_BLEEDING, "non ça va", "bleeding", 0),
    Reply("fr", FR_TO_BLEEDING, "pas du tout", "bleeding", 0),
    Reply("en", EN_TO_BLEEDING, "nope", "bleeding", 0),
    Reply("en", EN_TO_BLEEDING, "no, it stopped", "bleeding", 0),
    Reply("fr", FR_TO_SWELLING, "un peu gonflé", "swelling", 1),
    Reply("fr", FR_TO_SWELLING, "très enflé", "swelling", 3),
    Reply("en", EN_TO_SWELLING, "a bit swollen", "swelling", 1),
    Reply("en", EN_TO_SWELLING, "not at all", "swelling", 0),
    Reply("en", EN_TO_SWELLING, "moderately", "swelling", 2),
]


@pytest.mark.slow
async def test_a_table_of_realistic_replies_in_both_languages(harness: BotHarness) -> None:
    """Each reply from its own patient, all in one evening check-in: the value understood is
    saved beside the raw text, said back to the patient; an unclear one is asked again."""
    patients: list[VirtualPatient] = []
    for start in range(0, len(REPLIES), 9):
        batch = list(enumerate(REPLIES))[start : start + 9]
        patients += await asyncio.gather(
            *(
                harness.consented_patient(7000 + n, language=reply.language, label=f"T-{n}")
                for n, reply in batch
            )
        )
    await harness.advance_to(EVENING)

    async def play(patient: VirtualPatient, reply: Reply) -> None:
        for label in reply.before:
            message = await question(patient)
            patient.tap(message, label)
        asked = await question(patient)
        patient.say(reply.text)
        if reply.value is None:
            again = await patient.next()
            assert again.buttons() == asked.buttons(), reply
            hint = "Je n'ai pas bien compris" if reply.language == "fr" else "did not understand"
            assert hint in (again.text or ""), reply
        else:
            said = await patient.next()
            assert (said.text or "").startswith("Noté :" if reply.language == "fr" else "Noted:")

    await asyncio.gather(*(play(p, r) for p, r in zip(patients, REPLIES, strict=True)))
    async with harness.ctx.sessions() as session:
        rows = list(await session.scalars(select(Answer).where(Answer.kind == "text")))
    by_text = {(row.question_id, row.raw_text): row for row in rows}
    for reply in REPLIES:
        row = by_text[(reply.question_id, reply.text)]
        expected = ("unclear", None) if reply.value is None else ("ok", reply.value)
        assert (row.status, row.value) == expected, reply


ODD_TEXTS = [
    "😀😀😀",
    "?",
    ".",
    "\u200b",
    "'; DROP TABLE answers;--",
    "<b>gras</b> *étoile* _souligné_",
    "-3",
    "ما زال الألم",
    "douleur " * 500,
    "1\n2\n3\n4\n5",
    "38,5",
    "%s %d {phone} {0}",
]


async def replies_to(patient: VirtualPatient, text: str) -> list[SentMessage]:
    """Everything the bot answered to ``text`` (the /help sent right after marks the end)."""
    patient.say(text)
    patient.say("/help")
    replies = []
    while True:
        message = await patient.next()
        if "/stop —" in (message.text or ""):
            return replies
        replies.append(message)


async def test_odd_texts_never_crash_and_always_get_an_answer(harness: BotHarness) -> None:
    patient = await harness.consented_patient(6009, language="fr")
    for text in ODD_TEXTS:  # outside a check-in: saved as notes, read for red flags
        assert await replies_to(patient, text), text
    await harness.advance_to(EVENING)
    await question(patient)
    for text in ODD_TEXTS:  # inside the check-in, whatever question it lands on
        assert await replies_to(patient, text), text
    async with harness.ctx.sessions() as session:
        raw = set(await session.scalars(select(Answer.raw_text)))
    assert set(ODD_TEXTS) <= raw
