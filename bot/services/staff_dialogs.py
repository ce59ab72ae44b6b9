"""Multi-step staff commands whose position lives in the database, not in memory.

A nurse starts ``/enroll`` on a phone, is interrupted, and answers the next question ten minutes
later — possibly after a restart, or on another process behind the same PostgreSQL. So each
step is a row in ``staff_dialogs`` (one per staff member and chat), not a PTB
ConversationHandler state, which is lost on restart (PITFALLS.md). Dialogs expire after
:data:`DIALOG_TTL` so a forgotten one never captures a message sent hours later.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import segno
from sqlalchemy import delete, select

from bot.db.models import StaffDialog
from bot.services.context import ServiceContext

DIALOG_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class Dialog:
    """A staff member's open dialog: which command, at which step, what was said so far."""

    id: int
    kind: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)


async def begin(
    ctx: ServiceContext,
    *,
    chat_id: int,
    user_id: int,
    kind: str,
    step: str,
    data: dict[str, Any] | None = None,
) -> Dialog:
    """Open a dialog, replacing any dialog this staff member had open in this chat."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        await session.execute(
            delete(StaffDialog).where(
                StaffDialog.chat_id == chat_id, StaffDialog.user_id == user_id
            )
        )
        row = StaffDialog(
            chat_id=chat_id,
            user_id=user_id,
            kind=kind,
            step=step,
            data=dict(data or {}),
            created_at=now,
            expires_at=now + DIALOG_TTL,
        )
        session.add(row)
        await session.flush()
        return Dialog(row.id, kind, step, dict(row.data))


async def current(ctx: ServiceContext, *, chat_id: int, user_id: int) -> Dialog | None:
    """The open, unexpired dialog of this staff member in this chat (expired ones are dropped)."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        row = await session.scalar(
            select(StaffDialog).where(
                StaffDialog.chat_id == chat_id, StaffDialog.user_id == user_id
            )
        )
        if row is None:
            return None
        if row.expires_at <= now:
            await session.delete(row)
            return None
        return Dialog(row.id, row.kind, row.step, dict(row.data))


async def advance(ctx: ServiceContext, *, dialog_id: int, step: str, data: dict[str, Any]) -> bool:
    """Move a dialog to ``step`` with ``data``; False when it was closed meanwhile."""
    now = ctx.clock.now()
    async with ctx.sessions.begin() as session:
        row = await session.get(StaffDialog, dialog_id)
        if row is None:
            return False
        row.step = step
        row.data = dict(data)
        row.expires_at = now + DIALOG_TTL
        return True


async def finish(ctx: ServiceContext, *, dialog_id: int) -> bool:
    """Close a dialog; True only for the caller that closed it (a double tap closes once)."""
    async with ctx.sessions.begin() as session:
        result = await session.execute(delete(StaffDialog).where(StaffDialog.id == dialog_id))
        return bool(getattr(result, "rowcount", 0))


def qr_png(link: str) -> bytes:
    """The deep link as a QR code PNG, for the patient to scan from the nurse's screen."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()
