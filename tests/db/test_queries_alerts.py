"""The alert queries on both databases: the open alert of a rule, the delivery and
re-escalation claims (each row once, what they leave alone), and the next due time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Alert
from bot.db.queries.alerts import (
    alert_status,
    alerts_by_ids,
    claim_due_reescalations,
    claim_pending_deliveries,
    next_alert_event,
    unresolved_by_rule,
)
from bot.domain.states import AlertDelivery, AlertStatus
from tests.db.rows import NOW, alert, follow_up

Sessions = async_sessionmaker[AsyncSession]
MINUTE = timedelta(minutes=1)


async def _alerts(sessions: Sessions) -> dict[str, Alert]:
    async with sessions() as session:
        return {row.rule_id: row for row in await session.scalars(select(Alert))}


async def test_unresolved_by_rule_finds_alerts_added_in_the_same_transaction(
    sessions: Sessions,
) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        other = await follow_up(session, "P-2")
        alert(session, episode, "pain_high", status=AlertStatus.ACKNOWLEDGED)
        alert(session, episode, "fever", status=AlertStatus.RESOLVED)
        alert(session, other, "fever")

    async with sessions.begin() as session:
        alert(session, episode, "missed")  # not flushed yet: the query's autoflush writes it
        found = await unresolved_by_rule(session, episode_id=episode.id)
        assert {rule: row.status for rule, row in found.items()} == {
            "pain_high": AlertStatus.ACKNOWLEDGED,
            "missed": AlertStatus.OPEN,
        }


async def test_claim_pending_deliveries_holds_each_card_once(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        alert(session, episode, "new", next_delivery_at=NOW)
        alert(session, episode, "never_tried", next_delivery_at=None)
        alert(session, episode, "retry_later", next_delivery_at=NOW + MINUTE)
        alert(session, episode, "edit", delivery=AlertDelivery.SENT, needs_edit=True)
        alert(session, episode, "delivered", delivery=AlertDelivery.SENT)

    hold = NOW + 2 * MINUTE
    async with sessions.begin() as session:
        first = await claim_pending_deliveries(session, now=NOW, limit=2, hold_until=hold)
    async with sessions.begin() as session:
        second = await claim_pending_deliveries(session, now=NOW, limit=10, hold_until=hold)
    async with sessions.begin() as session:
        assert await claim_pending_deliveries(session, now=NOW, limit=10, hold_until=hold) == []

    rows = await _alerts(sessions)
    by_id = {row.id: row for row in rows.values()}
    assert first == sorted(first) and len(first) == 2
    assert sorted(by_id[i].rule_id for i in first + second) == ["edit", "never_tried", "new"]
    assert max(first) < min(second)
    for rule in ("new", "never_tried", "edit"):
        assert (rows[rule].next_delivery_at, rows[rule].needs_edit) == (hold, False)
    assert rows["retry_later"].next_delivery_at == NOW + MINUTE
    assert rows["delivered"].next_delivery_at is None

    # Once the hold is over, an undelivered card is due again (a crash never loses it).
    async with sessions.begin() as session:
        again = await claim_pending_deliveries(session, now=hold, limit=10, hold_until=hold)
    assert sorted(by_id[i].rule_id for i in again) == ["never_tried", "new", "retry_later"]


async def test_concurrent_delivery_claims_skip_locked_rows_on_postgresql(
    backend: str, sessions: Sessions
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has a single writer: its claims are serialised, never concurrent")
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        for index in range(4):
            alert(session, episode, f"rule_{index}", next_delivery_at=NOW)

    hold = NOW + MINUTE
    async with sessions.begin() as holding:
        held = await claim_pending_deliveries(holding, now=NOW, limit=1, hold_until=hold)
        async with sessions.begin() as other:
            taken = await asyncio.wait_for(
                claim_pending_deliveries(other, now=NOW, limit=10, hold_until=hold), timeout=10
            )
    assert len(held) == 1
    assert len(taken) == 3
    assert not set(held) & set(taken)


async def test_claim_due_reescalations_counts_each_open_alert_once(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        alert(session, episode, "due", severity="urgent", next_escalation_at=NOW - MINUTE)
        alert(
            session,
            episode,
            "again",
            severity="urgent",
            next_escalation_at=NOW,
            escalation_count=2,
        )
        alert(session, episode, "later", severity="urgent", next_escalation_at=NOW + MINUTE)
        alert(session, episode, "review", severity="review")
        alert(
            session,
            episode,
            "taken",
            severity="urgent",
            status=AlertStatus.ACKNOWLEDGED,
            next_escalation_at=NOW - MINUTE,
        )

    next_at = NOW + 15 * MINUTE
    async with sessions.begin() as session:
        claimed = await claim_due_reescalations(session, now=NOW, next_at=next_at)
    async with sessions.begin() as session:
        assert await claim_due_reescalations(session, now=NOW, next_at=next_at) == []

    rows = await _alerts(sessions)
    assert sorted(row.rule_id for row in rows.values() if row.id in claimed) == ["again", "due"]
    assert (rows["due"].next_escalation_at, rows["due"].escalation_count) == (next_at, 1)
    assert (rows["again"].next_escalation_at, rows["again"].escalation_count) == (next_at, 3)
    assert (rows["later"].next_escalation_at, rows["later"].escalation_count) == (
        NOW + MINUTE,
        0,
    )
    assert rows["taken"].escalation_count == 0


async def test_alerts_by_ids_and_alert_status(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        first = alert(session, episode, "a", status=AlertStatus.RESOLVED)
        second = alert(session, episode, "b")
        alert(session, episode, "c")
        await session.flush()
        ids = [second.id, first.id]

    async with sessions() as session:
        assert [row.rule_id for row in await alerts_by_ids(session, ids=ids)] == ["a", "b"]
        assert await alerts_by_ids(session, ids=[]) == []
        assert await alert_status(session, alert_id=first.id) == AlertStatus.RESOLVED
        assert await alert_status(session, alert_id=second.id) == AlertStatus.OPEN
        assert await alert_status(session, alert_id=second.id + 100) is None


async def test_next_alert_event_is_the_earliest_delivery_or_escalation(
    sessions: Sessions,
) -> None:
    async with sessions() as session:
        assert await next_alert_event(session) is None
    async with sessions.begin() as session:
        episode = await follow_up(session, "P-1")
        # Delivered with nothing to edit, or resolved: their times are not waited for.
        alert(
            session,
            episode,
            "sent",
            delivery=AlertDelivery.SENT,
            next_delivery_at=NOW - 9 * MINUTE,
        )
        alert(
            session,
            episode,
            "closed",
            status=AlertStatus.RESOLVED,
            delivery=AlertDelivery.SENT,
            next_escalation_at=NOW - 9 * MINUTE,
        )
        alert(session, episode, "escalate", severity="urgent", next_escalation_at=NOW + 5 * MINUTE)
    async with sessions() as session:
        assert await next_alert_event(session) == NOW + 5 * MINUTE

    async with sessions.begin() as session:
        alert(
            session,
            episode,
            "edit",
            delivery=AlertDelivery.SENT,
            needs_edit=True,
            next_delivery_at=NOW + 3 * MINUTE,
        )
    async with sessions() as session:
        assert await next_alert_event(session) == NOW + 3 * MINUTE
    async with sessions.begin() as session:
        alert(session, episode, "retry", next_delivery_at=NOW + MINUTE)
    async with sessions() as session:
        assert await next_alert_event(session) == NOW + MINUTE
