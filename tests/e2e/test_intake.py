"""Intake through the real stack: a poison update is set aside and intake goes on, one chat's
updates stay in order while other chats run, and nothing of a patient reaches the logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import Answer, DeadLetter
from bot.logs import RedactingFilter
from tests.harness import PARIS, STAFF_CHAT, BotHarness, TestDatabase, eventually, question

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)


CANARY = "mon tel 0611223344 canari-7f3a"


async def test_an_unreadable_update_is_set_aside_and_the_next_ones_are_handled(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A poll without its fields (python-telegram-bot cannot build it) used to stop polling for
    good and log the whole batch, the patient's words included, at CRITICAL."""
    caplog.handler.addFilter(RedactingFilter())
    patient = await harness.consented_patient()
    bad = harness.server.send_content(patient.user_id, {"poll": {"id": "p1", "question": CANARY}})
    patient.say(f"/help {CANARY}")
    await patient.until("/stop")

    async def set_aside() -> None:
        async with harness.ctx.sessions() as session:
            rows = list(await session.scalars(select(DeadLetter)))
        assert [row.update_id for row in rows] == [bad["update_id"]]
        assert CANARY in rows[0].raw  # kept for staff to look into, in the database only

    await eventually(set_aside)
    logged = (
        "\n".join(f"{record.getMessage()} {record.exc_info}" for record in caplog.records)
        + caplog.text
    )
    assert CANARY not in logged
    assert "0611223344" not in logged


async def test_one_chat_keeps_its_order_while_another_chat_runs(harness: BotHarness) -> None:
    first = await harness.consented_patient(1001, label="P-001")
    second = await harness.consented_patient(1002, label="P-002")
    await harness.advance_to(EVENING)
    for patient in (first, second):
        await question(patient)
    # Three messages from one patient, interleaved with another's: each chat in its own order.
    first.say("4")
    second.say("6")
    first.say("un peu gonflé")
    second.say("pas du tout")

    async def both_saved() -> None:
        async with harness.ctx.sessions() as session:
            rows = list(await session.execute(select(Answer.raw_text).order_by(Answer.id)))
        texts = [row.raw_text for row in rows if row.raw_text]
        assert {"4", "6", "un peu gonflé", "pas du tout"} <= set(texts), texts
        assert texts.index("4") < texts.index("un peu gonflé")
        assert texts.index("6") < texts.index("pas du tout")

    await eventually(both_saved)


def test_the_filter_withholds_third_party_arguments_and_exception_messages() -> None:
    record = logging.LogRecord(
        "telegram.ext.Updater",
        logging.CRITICAL,
        __file__,
        1,
        "Received data was %r",
        (CANARY,),
        None,
    )
    try:
        raise ValueError(CANARY)
    except ValueError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert CANARY not in text
    assert "ValueError (message withheld)" in text


class _LimitedHarness(BotHarness):
    """The production rate limiter, against a fake server enforcing Telegram's limits."""

    rate_limit = True


async def test_a_429_on_the_staff_chat_does_not_delay_another_patients_reply(
    database: TestDatabase, tmp_path: Path
) -> None:
    """PTB's limiter paused every request on a 429: an unrelated patient waited 38.6 s."""
    async with _LimitedHarness(database, tmp_path) as harness:
        harness.server.enforce_limits = True
        first = await harness.consented_patient(1001, label="P-001")
        second = await harness.consented_patient(1002, label="P-002")
        await harness.advance_to(EVENING)
        for patient in (first, second):
            await question(patient)
        harness.server.inject_fault("429", chat_id=STAFF_CHAT, seconds=40, retry_after=10)
        first.say("9")  # urgent: its staff card meets the 429
        await first.until("Noté")
        started = asyncio.get_running_loop().time()
        second.say("3")
        await second.until("Noté")
        delay = asyncio.get_running_loop().time() - started
        harness.server.clear_faults()
    assert delay < 2.0, f"the other patient waited {delay:.1f} s"
    print(f"\n429 on the staff chat: another patient's reply took {delay * 1000:.0f} ms")


async def test_a_text_with_a_nul_character_is_saved_on_every_database(harness: BotHarness) -> None:
    """PostgreSQL refuses U+0000 in text: 16 fuzzed answers were lost that way."""
    patient = await harness.consented_patient()
    patient.say("le genou\x00 va bien")
    await patient.next()

    async def saved() -> None:
        async with harness.ctx.sessions() as session:
            texts = list(await session.scalars(select(Answer.raw_text)))
        assert "le genou va bien" in texts

    await eventually(saved)


async def test_the_morning_digest_counts_the_updates_set_aside(harness: BotHarness) -> None:
    patient = await harness.consented_patient()
    harness.server.send_content(patient.user_id, {"poll": {"id": "p9"}})
    await harness.settle()
    # Friday 4 Dec 2026 08:31: the digest of the working day.
    await harness.advance_to(datetime(2026, 12, 4, 8, 31, tzinfo=PARIS))
    digest = await harness.staff_message("Suivi cryoneurolyse")
    assert "Messages mis de côté (illisibles, conservés en base) : 1" in (digest.text or "")
