"""Quiet hours hold for everything the bot sends a patient on its own, not only for reminders: a
check-in or a reminder that fell due while the bot was down waits for the end of the quiet hours
in the patient's time zone (DST included) when the bot comes back at night, and is sent in the
morning if its window is still open.

The dates straddle the spring DST change in Paris (Sunday 28 March 2027, 02:00 → 03:00): the
quiet hours (21:00-08:00) end at 08:00 summer time, 06:00 UTC, where winter time would give
07:00 UTC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import CheckIn
from tests.harness import PARIS, BotHarness, TestDatabase
from tests.harness import Patient as VirtualPatient

PROCEDURE = datetime(2027, 3, 20, 9, 30, tzinfo=PARIS)
D7 = datetime(2027, 3, 27, 10, 0, tzinfo=PARIS)  # d7: 10:00 winter time, window 24 h
NIGHT = datetime(2027, 3, 27, 22, 30, tzinfo=PARIS)
BEFORE_END = datetime(2027, 3, 28, 7, 59, tzinfo=PARIS)  # summer time from 03:00
QUIET_END = datetime(2027, 3, 28, 8, 0, tzinfo=PARIS)
GREETING = "Voici votre point de suivi"
RELIEF = "Le soulagement s'installe"  # d7's information message
REMINDER = "Petit rappel"


@pytest.fixture
async def spring(database: TestDatabase, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The bot on the morning of a procedure the week before the DST change."""
    async with BotHarness(
        database, tmp_path, start=datetime(2027, 3, 20, 8, 0, tzinfo=PARIS)
    ) as running:
        yield running


async def _consented(harness: BotHarness, user_id: int) -> VirtualPatient:
    invitation = await harness.enrol("P-001", procedure_at=PROCEDURE)
    patient = VirtualPatient(harness.server, user_id)
    patient.say(f"/start {invitation.token}")
    patient.tap(await patient.next(), "J'accepte")
    patient.tap(await patient.next(), "5")
    await patient.until("Prochain")
    await harness.settle()
    return patient


def _count(harness: BotHarness, chat_id: int, needle: str) -> int:
    return sum(needle in (m.text or "") for m in harness.server.sent(chat_id))


async def _d7(harness: BotHarness) -> CheckIn:
    async with harness.ctx.sessions() as session:
        row = await session.scalar(select(CheckIn).where(CheckIn.def_id == "d7"))
        assert row is not None
        return row


async def test_a_late_checkin_found_at_night_waits_for_the_morning(spring: BotHarness) -> None:
    patient = await _consented(spring, 1301)
    await spring.stop_bot()
    spring.clock.set(NIGHT)  # down from the procedure day to day 7, 22:30: d7 is overdue
    await spring.start_bot()
    sent_before = len(spring.server.sent(1301))

    for when in (NIGHT, datetime(2027, 3, 28, 3, 30, tzinfo=PARIS), BEFORE_END):
        await spring.advance_to(when)
        assert len(spring.server.sent(1301)) == sent_before, (
            when,
            [m.text for m in spring.server.sent(1301)[sent_before:]],
        )
    assert (await _d7(spring)).status == "scheduled"

    await spring.advance_to(QUIET_END)
    await patient.until(GREETING)
    assert _count(spring, 1301, RELIEF) == 1
    assert _count(spring, 1301, GREETING) == 1
    assert (await _d7(spring)).status == "awaiting"


async def test_a_reminder_overdue_at_night_waits_for_the_morning(spring: BotHarness) -> None:
    patient = await _consented(spring, 1302)
    await spring.advance_to(D7)
    await patient.until(GREETING)
    await spring.stop_bot()
    spring.clock.set(NIGHT)  # down through both reminders (12:00 and 14:00)
    await spring.start_bot()

    for when in (NIGHT, datetime(2027, 3, 28, 1, 0, tzinfo=PARIS), BEFORE_END):
        await spring.advance_to(when)
        assert _count(spring, 1302, REMINDER) == 0, when

    await spring.advance_to(QUIET_END)
    await patient.until(REMINDER)
    assert _count(spring, 1302, REMINDER) == 1
