"""Alert rows: the open alert of an episode and rule, the claims of staff-card deliveries and
re-escalations, and when the next of them is due.

A claim is one ``UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]) RETURNING`` that
moves the row's next time forward: a concurrent caller (another task or process) no longer
finds it due, so a card is never posted twice, and on PostgreSQL it skips the rows another
process holds instead of waiting.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert
from bot.db.queries._locking import claimable
from bot.domain.states import AlertDelivery, AlertStatus


async def unresolved_by_rule(session: AsyncSession, *, episode_id: int) -> dict[str, Alert]:
    """The episode's alerts not yet resolved, by rule: a new finding for a rule extends its
    alert instead of opening a second one (no alert fatigue).

    The query autoflushes, so alerts added earlier in the same transaction are found too.
    """
    rows = await session.scalars(
        select(Alert).where(Alert.episode_id == episode_id, Alert.status != AlertStatus.RESOLVED)
    )
    return {alert.rule_id: alert for alert in rows}


async def claim_pending_deliveries(
    session: AsyncSession, *, now: datetime, limit: int, hold_until: datetime
) -> list[int]:
    """Claim up to ``limit`` staff cards to post or edit, lowest id first, by moving their next
    delivery time to ``hold_until`` (and clearing the edit flag) in one atomic UPDATE."""
    due = (
        select(Alert.id)
        .where(
            or_(Alert.delivery == AlertDelivery.PENDING, Alert.needs_edit.is_(True)),
            or_(Alert.next_delivery_at.is_(None), Alert.next_delivery_at <= now),
        )
        .order_by(Alert.id)
        .limit(limit)
    )
    claimed = await session.execute(
        update(Alert)
        .where(Alert.id.in_(claimable(due, session, name="due")))
        .values(next_delivery_at=hold_until, needs_edit=False)
        .returning(Alert.id)
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in claimed]


async def release_deliveries(session: AsyncSession, *, ids: list[int], now: datetime) -> None:
    """Make the claimed cards of ``ids`` due at ``now`` again (their delivery never started):
    a card to post, or the edit of one posted."""
    await session.execute(
        update(Alert)
        .where(Alert.id.in_(ids))
        .values(
            next_delivery_at=now,
            needs_edit=or_(Alert.needs_edit, Alert.delivery == AlertDelivery.SENT),
        )
        .execution_options(synchronize_session=False)
    )


async def claim_due_reescalations(
    session: AsyncSession, *, now: datetime, next_at: datetime
) -> list[int]:
    """Claim the open alerts whose re-escalation is due: count it and move the next one to
    ``next_at`` in one atomic UPDATE, so the on-call chat gets each reminder once."""
    due = select(Alert.id).where(
        Alert.status == AlertStatus.OPEN,
        Alert.next_escalation_at.is_not(None),
        Alert.next_escalation_at <= now,
    )
    claimed = await session.execute(
        update(Alert)
        .where(Alert.id.in_(claimable(due, session, name="due")))
        .values(next_escalation_at=next_at, escalation_count=Alert.escalation_count + 1)
        .returning(Alert.id)
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in claimed]


async def alerts_by_ids(session: AsyncSession, *, ids: Collection[int]) -> list[Alert]:
    """The claimed alerts, lowest id first (cards go out in the order alerts were raised)."""
    return list(await session.scalars(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.id)))


async def alert_status(session: AsyncSession, *, alert_id: int) -> AlertStatus | None:
    """An alert's status without loading the row (None when it does not exist)."""
    return await session.scalar(select(Alert.status).where(Alert.id == alert_id))


async def next_alert_event(session: AsyncSession) -> datetime | None:
    """The earliest card delivery (or retry) or re-escalation, for the dispatcher's wake-up."""
    delivery = await session.scalar(
        select(func.min(Alert.next_delivery_at)).where(
            or_(Alert.delivery == AlertDelivery.PENDING, Alert.needs_edit.is_(True))
        )
    )
    escalation = await session.scalar(
        select(func.min(Alert.next_escalation_at)).where(Alert.status == AlertStatus.OPEN)
    )
    candidates = [moment for moment in (delivery, escalation) if moment is not None]
    return min(candidates) if candidates else None
