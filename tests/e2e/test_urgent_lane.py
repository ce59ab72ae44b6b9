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
