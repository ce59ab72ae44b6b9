"""The urgent lane through the real stack: a red flag or a pain at the protocol's urgent
threshold overtakes the ordinary answers queued before it, and a chat's own order is kept.

The bot handles one ordinary update at a time here (``intake_slots = 1``) and every Bot API
call is slowed down, so ordinary answers queue; what is asserted is the order in which
Telegram received the messages, never a duration."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.sandbox.fake_api import SentMessage
from tests.harness import PARIS, STAFF_CHAT, BotHarness, Patient, TestDatabase, question

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
ADVICE = "Cela doit être vérifié aujourd'hui"  # the urgent safety advice (protocol wording)
ORDINARY = 5


class _OneAtATime(BotHarness):
    intake_slots = 1


def _position(sent: list[SentMessage], found: SentMessage) -> int:
    return next(i for i, m in enumerate(sent) if m is found)


async def _patients(harness: BotHarness) -> tuple[list[Patient], Patient]:
    ordinary = [
        await harness.consented_patient(2001 + i, label=f"P-{i + 1:03d}") for i in range(ORDINARY)
    ]
    urgent = await harness.consented_patient(2100, label="P-URG")
    await harness.advance_to(EVENING)
    for patient in (*ordinary, urgent):
        await question(patient)
    return ordinary, urgent


async def test_an_urgent_answer_overtakes_the_ordinary_answers_queued_before_it(
    database: TestDatabase, tmp_path: Path
) -> None:
    async with _OneAtATime(database, tmp_path) as harness:
        ordinary, urgent = await _patients(harness)
        harness.server.latency = 0.05  # each ordinary answer now takes a few calls' time
        for patient in ordinary:
            patient.say("4")
        urgent.say("9")  # a pain at the urgent threshold (pain_high_evening: >= 8)
        card = await harness.staff_message("P-URG")
        advice = await urgent.until(ADVICE)
        last_noted = [await patient.until("Noté") for patient in ordinary][-1]
        harness.server.latency = 0.0
        sent = harness.server.sent()
    assert "URGENT" in (card.text or "")
    # The staff card and the safety advice went before the last ordinary patient's reply,
    # although that patient answered first.
    assert _position(sent, card) < _position(sent, last_noted)
    assert _position(sent, advice) < _position(sent, last_noted)
    assert not any("P-00" in (m.text or "") for m in sent if m.chat_id == STAFF_CHAT)


async def test_the_urgent_lane_keeps_the_order_of_its_own_chat(
    database: TestDatabase, tmp_path: Path
) -> None:
    async with _OneAtATime(database, tmp_path) as harness:
        ordinary, urgent = await _patients(harness)
        harness.server.latency = 0.05
        for patient in ordinary:
            patient.say("4")
        urgent.say("3")  # ordinary, but sent before the urgent message of the same chat
        urgent.say("j'ai 39 de fièvre depuis ce matin")  # a red flag read for certain (R3)
        noted = await urgent.until("Noté : 3/10")
        advice = await urgent.until(ADVICE)
        card = await harness.staff_message("P-URG")
        last_noted = [await patient.until("Noté") for patient in ordinary][-1]
        harness.server.latency = 0.0
        sent = harness.server.sent()
    # Within the chat: the answer sent first is answered first, then the advice.
    assert _position(sent, noted) < _position(sent, advice)
    # And the whole lane ran ahead of the other patients' queued answers.
    assert _position(sent, card) < _position(sent, last_noted)


async def test_an_urgent_answer_behind_more_than_a_getupdates_window_is_not_held_back(
    database: TestDatabase, tmp_path: Path
) -> None:
    """getUpdates returns at most 100 updates past the offset. Confirming only what was handled
    made the 151st update wait until 51 of the 150 before it were handled: the card followed
    at least 51 ordinary replies. Kept in the inbox, the batch is confirmed at once and the
    red flag is fetched with the crowd."""
    async with _OneAtATime(database, tmp_path) as harness:
        ordinary, urgent = await _patients(harness)
        harness.server.latency = 0.05
        start = {p.user_id: len(harness.server.sent(p.user_id)) for p in ordinary}
        for patient in ordinary:
            patient.say("4")
            for _ in range(29):
                patient.say("merci")
        urgent.say("9")
        card = await harness.staff_message("P-URG", timeout=60)
        harness.server.latency = 0.0
        sent = harness.server.sent()
        before = [m for m in sent[: _position(sent, card)] if m.chat_id != urgent.user_id]
        for patient in ordinary:  # every ordinary update is still answered
            await harness.server.wait_for_count(
                start[patient.user_id] + 30, chat_id=patient.user_id, timeout=60
            )
    assert len(before) < 40, f"{len(before)} ordinary replies went before the card"
