"""Telegram misbehaving for a while (429, 5xx, timeouts, lost responses): once it recovers,
every check-in and every staff alert is delivered, exactly once when Telegram refused the
request, at most once more per lost response (the bound the dispatcher documents)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.db.models import Alert, CheckIn
from tests.faults.support import ErrorRecorder, advance
from tests.harness import PARIS, STAFF_CHAT, BotHarness, eventually

pytestmark = pytest.mark.fault

EVENING = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
#: Beyond the dispatcher's and the alerts' longest retry backoff.
AFTER_BACKOFF = timedelta(minutes=11)
FAULTS = ["429", "500", "502", "timeout", "429", "500"]


async def test_every_checkin_and_the_alert_arrive_once_after_a_telegram_outage(
    harness: BotHarness,
) -> None:
    patients = [
        await harness.consented_patient(2000 + i, label=f"P-{i:03d}") for i in range(len(FAULTS))
    ]
    errors = ErrorRecorder().attach(harness)
    server = harness.server
    server.fault_timeout_delay = 0.2  # a stalled call, then the connection closes unanswered
    for patient, kind in zip(patients, FAULTS, strict=True):
        server.inject_fault(kind, chat_id=patient.user_id, count=None)

    await advance(harness, EVENING)
    await advance(harness, EVENING + AFTER_BACKOFF)  # still down
    assert not any(_questions(harness, p.user_id) for p in patients)
    async with harness.ctx.sessions() as session:
        attempts = list(
            await session.scalars(select(CheckIn.attempts).where(CheckIn.def_id == "d0_evening"))
        )
    assert len(attempts) == len(FAULTS) and min(attempts) >= 2
    server.clear_faults()
    await advance(harness, EVENING + 2 * AFTER_BACKOFF)

    for patient in patients:
        texts = [m.text for m in server.sent(patient.user_id)]
        opening = texts[-2:]
        assert (opening[0] or "").startswith("Il est normal")
        assert "douleur de votre genou en ce moment" in (opening[1] or "")
        repeated = [t for t, n in Counter(texts).items() if n > 1]
        assert repeated == [], f"patient {patient.user_id} got {repeated} twice"
    async with harness.ctx.sessions() as session:
        sent = list(
            await session.scalars(select(CheckIn.sent_at).where(CheckIn.def_id == "d0_evening"))
        )
    assert len(sent) == len(FAULTS) and all(s is not None for s in sent)

    # An urgent answer while the staff chat is down: the alert waits, then arrives once.
    server.inject_fault("502", chat_id=STAFF_CHAT, count=None)
    first = patients[0]
    first.tap(await first.until("douleur"), "9")
    await first.until("01 23 45 67 89")  # the patient's safety advice is not held up
    await harness.settle()
    async with harness.ctx.sessions() as session:
        alert = await session.scalar(select(Alert))
        assert alert is not None and alert.delivery == "pending"
    await advance(harness, EVENING + 3 * AFTER_BACKOFF)  # still down: one more failure
    server.clear_faults()
    await advance(harness, EVENING + 4 * AFTER_BACKOFF)
    await advance(harness, EVENING + 5 * AFTER_BACKOFF)
    cards = [m for m in server.sent(STAFF_CHAT) if "P-000" in (m.text or "")]
    assert len(cards) == 1 and "URGENT" in (cards[0].text or "")

    async def delivered() -> None:
        async with harness.ctx.sessions() as session:
            row = await session.scalar(select(Alert))
            assert row is not None and row.delivery == "sent"

    await eventually(delivered)
    assert errors.errors == []


async def test_a_lost_response_costs_at_most_one_duplicate_never_a_checkin(
    harness: BotHarness,
) -> None:
    patient = await harness.consented_patient(2100)
    # Telegram applies the information message but the answer never comes back.
    harness.server.inject_fault("drop", chat_id=patient.user_id, count=1)
    await advance(harness, EVENING)
    await advance(harness, EVENING + AFTER_BACKOFF)
    texts = [m.text or "" for m in harness.server.sent(patient.user_id)]
    information = [t for t in texts if t.startswith("Il est normal")]
    assert len(information) == 2  # the one duplicate the lost response allows
    assert len(_questions(harness, patient.user_id)) == 1


def _questions(harness: BotHarness, chat_id: int) -> list[str]:
    """The evening check-in's first question as received by ``chat_id``."""
    return [
        m.text or ""
        for m in harness.server.sent(chat_id)
        if "douleur de votre genou en ce moment" in (m.text or "")
    ]
