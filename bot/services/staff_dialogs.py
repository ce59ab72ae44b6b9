"""Multi-step staff commands whose position lives in the database, not in memory.

A nurse starts ``/enroll`` on a phone, is interrupted, and answers the next question ten minutes
later — possibly after a restart, or on another process behind the same PostgreSQL. So each
step is a row in ``staff_dialogs`` (one per staff member and chat), not a PTB
ConversationHandler state, which is lost on restart (docs/pitfalls.md). Dialogs expire after
:data:`DIALOG_TTL` so a forgotten one never captures a message sent hours later.

This module only keeps dialogs; what each step asks and does is in
:mod:`bot.services.staff_enrolment` (the guided ``/enroll``) and :mod:`bot.services.alert_actions`
(the resolution note).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from bot.db.models import StaffDialog
from bot.services.context import ServiceContext
from bot.services.enrolment import PROCEDURE_AT_MOST_AHEAD, PROCEDURE_AT_MOST_DAYS_AGO

#: How long a person at a keyboard has for the next step: real time, also on a rehearsal clock.
DIALOG_TTL = timedelta(hours=1)
_TIME = r"(?P<hour>[01]?\d|2[0-3])\s*[:hH]\s*(?P<minute>[0-5]\d)?"
_FORMATS = (
    re.compile(rf"^(?P<day>\d{{1,2}})/(?P<month>\d{{1,2}})/(?P<year>\d{{4}})\s+{_TIME}$"),
    re.compile(rf"^(?P<day>\d{{1,2}})/(?P<month>\d{{1,2}})\s+{_TIME}$"),
    re.compile(rf"^(?P<year>\d{{4}})-(?P<month>\d{{1,2}})-(?P<day>\d{{1,2}})\s+{_TIME}$"),
    re.compile(rf"^{_TIME}$"),
)


class DialogKind(StrEnum):
    """Which multi-step command a dialog belongs to (each names its own steps)."""

    ENROL = "enroll"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class Dialog:
    """A staff member's open dialog: which command, at which step, what was said so far."""

    id: int
    kind: DialogKind
    step: str
    data: dict[str, Any] = field(default_factory=dict)


async def begin(
    ctx: ServiceContext,
    *,
    chat_id: int,
    user_id: int,
    kind: DialogKind,
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
            expires_at=ctx.clock.after_real(DIALOG_TTL),
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
        return Dialog(row.id, DialogKind(row.kind), row.step, dict(row.data))


async def advance(ctx: ServiceContext, *, dialog_id: int, step: str, data: dict[str, Any]) -> bool:
    """Move a dialog to ``step`` with ``data``; False when it was closed meanwhile."""
    async with ctx.sessions.begin() as session:
        row = await session.get(StaffDialog, dialog_id)
        if row is None:
            return False
        row.step = step
        row.data = dict(data)
        row.expires_at = ctx.clock.after_real(DIALOG_TTL)
        return True


async def finish(ctx: ServiceContext, *, dialog_id: int) -> bool:
    """Close a dialog; True only for the caller that closed it (a double tap closes once)."""
    async with ctx.sessions.begin() as session:
        result = await session.execute(delete(StaffDialog).where(StaffDialog.id == dialog_id))
        return bool(getattr(result, "rowcount", 0))


def parse_procedure_time(text: str, *, now: datetime, time_zone: str) -> datetime | None:
    """A nurse's date and time in the unit's zone, or None when it cannot be read or is absurd.

    Accepts ``01/12/2026 09:30``, ``01/12 09:30`` (this year), ``2026-12-01 09:30`` and ``09:30``
    or ``9h30`` alone (today: enrolment usually happens on the day of the procedure).
    """
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone)
    for pattern in _FORMATS:
        match = pattern.match(text.strip())
        if match is None:
            continue
        parts = match.groupdict()
        try:
            moment = datetime(
                int(parts.get("year") or today.year),
                int(parts.get("month") or today.month),
                int(parts.get("day") or today.day),
                int(parts["hour"]),
                int(parts.get("minute") or 0),
                tzinfo=zone,
            )
        except ValueError:
            return None
        if not now - PROCEDURE_AT_MOST_DAYS_AGO <= moment <= now + PROCEDURE_AT_MOST_AHEAD:
            return None
        return moment
    return None
