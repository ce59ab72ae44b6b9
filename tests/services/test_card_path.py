"""The staff card of a red flag goes out without waiting for the database once the answer is
saved: it is claimed and built in the answer's own transaction (bot/services/alerts.py,
``claim_cards``), so nothing between the patient's safety advice and the card needs a write.

Seen in the bench: on SQLite the claim written after the commit waited for the one write lock
behind a burst's ordinary replies, 180-730 ms of the card's time. Here another connection
holds that lock from the moment the advice goes until the card is posted (or 3 s); the card
must be posted while it is held. SQLite only: that is where one writer waits for another."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.db.models import Alert
from bot.services import alerts, conversation
from bot.services.ports import OutgoingMessage, SentRef
from tests.harness import TestDatabase
from tests.services.course import (
    PARIS,
    STAFF_CHAT,
    RecordingMessenger,
    Services,
    play_course,
    services,
)

START = datetime(2026, 12, 1, 8, 0, tzinfo=PARIS)
CHAT = 7001
HOLD = 3.0
#: A calf swollen, red and painful: a possible clot, an urgent red flag.
FR = "Mon mollet est gonflé, rouge et très douloureux depuis ce matin"
EN = "My calf is swollen, red and very painful since this morning"


async def _calf_pain(svc: Services, text: str, *, update_id: int) -> None:
    await conversation.handle_text(
        svc.ctx, chat_id=CHAT, text=text, update_id=update_id, message_id=update_id % 1000
    )


@dataclass
class LockAfterAdvice(RecordingMessenger):
    """Takes SQLite's write lock with a second connection as the patient's first message goes,
    and records whether it is still held when the staff card is posted."""

    path: str = ""
    held_at_card: list[bool] = field(default_factory=list)
    _other: sqlite3.Connection | None = None

    async def send(self, chat_id: int, message: OutgoingMessage) -> SentRef:
        if chat_id == CHAT and self._other is None:
            self._other = sqlite3.connect(
                self.path, isolation_level=None, timeout=5, check_same_thread=False
            )
            # In a thread: the sent log may be writing an earlier send just now, and its
            # transaction ends only if the event loop is free to run it.
            await asyncio.to_thread(self._other.execute, "BEGIN IMMEDIATE")
            asyncio.get_running_loop().call_later(HOLD, self.release)
        if chat_id == STAFF_CHAT:
            self.held_at_card.append(self._other is not None and self._other.in_transaction)
            self.release()
        return await super().send(chat_id, message)

    def release(self) -> None:
        if self._other is not None and self._other.in_transaction:
            self._other.execute("ROLLBACK")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_card_is_posted_while_another_writer_holds_the_lock(
    database: TestDatabase,
) -> None:
    async with services(database, START) as svc:
        await play_course(svc, chat_id=CHAT, until="d1")
        path = make_url(database.url).database
        assert path is not None
        messenger = LockAfterAdvice(path=path)
        svc.ctx.messenger = messenger
        try:
            await _calf_pain(svc, FR, update_id=900_001)
        finally:
            messenger.release()
        async with svc.ctx.sessions() as session:
            alert = await session.scalar(select(Alert).order_by(Alert.id.desc()))

    assert messenger.sent[CHAT]  # the safety advice went first
    assert messenger.held_at_card == [True]  # the card did not wait for the other writer
    assert alert is not None and alert.severity == "urgent"
    assert alert.delivery == "sent" and alert.staff_message_id is not None
    assert alert.next_delivery_at is None  # delivered: nothing left for the next tick


async def test_a_card_claimed_in_the_turn_is_not_posted_again_by_the_tick(
    database: TestDatabase,
) -> None:
    async with services(database, START) as svc:
        await play_course(svc, chat_id=CHAT, until="d1")
        before = len(svc.messenger.sent.get(STAFF_CHAT, []))
        await _calf_pain(svc, EN, update_id=900_002)
        cards = svc.messenger.sent.get(STAFF_CHAT, [])[before:]
        assert await alerts.deliver_pending(svc.ctx) == 0  # the dispatcher's tick, just after
    assert len(cards) == 1 and "P-100" in (cards[0].text or "")


@dataclass
class BreaksOnPatientSend(RecordingMessenger):
    """An unexpected failure (a bug, not a delivery error) as the patient's advice goes."""

    async def send(self, chat_id: int, message: OutgoingMessage) -> SentRef:
        if chat_id == CHAT:
            raise RuntimeError("unexpected")
        return await super().send(chat_id, message)


async def test_a_card_whose_handling_failed_before_it_went_is_left_to_the_next_tick(
    database: TestDatabase,
) -> None:
    """Claimed in the turn, the card would otherwise wait out its claim (2 min)."""
    async with services(database, START) as svc:
        await play_course(svc, chat_id=CHAT, until="d1")
        working = svc.messenger
        svc.ctx.messenger = BreaksOnPatientSend()
        with pytest.raises(RuntimeError):
            await _calf_pain(svc, FR, update_id=900_003)
        svc.ctx.messenger = working
        before = len(working.sent.get(STAFF_CHAT, []))
        assert await alerts.deliver_pending(svc.ctx) == 1  # the next tick, at once
        cards = working.sent.get(STAFF_CHAT, [])[before:]
    assert len(cards) == 1 and "P-100" in (cards[0].text or "")
