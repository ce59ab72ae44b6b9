"""The audit trail: who did what and when, with ids only (never health values or free text)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEvent


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    episode_id: int | None = None,
    alert_id: int | None = None,
    **details: Any,
) -> None:
    """Add an audit event to the current transaction (it commits with the change it records)."""
    session.add(
        AuditEvent(
            at=at,
            actor=actor,
            action=action,
            episode_id=episode_id,
            alert_id=alert_id,
            details=details,
        )
    )


async def list_events(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    action: str | None = None,
    episode_id: int | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    """Audit events, newest last, filtered for the CLI."""
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if episode_id is not None:
        query = query.where(AuditEvent.episode_id == episode_id)
    rows = (await session.scalars(query.limit(limit))).all()
    return list(rows)
