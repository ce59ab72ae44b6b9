"""Row locks that only PostgreSQL needs.

Several processes claim rows from one PostgreSQL database at once: ``FOR UPDATE SKIP LOCKED``
lets each take rows nobody else holds, without waiting for the others' commits. SQLite has a
single writer, which already serialises the claims (and has no ``FOR UPDATE``).
"""

from __future__ import annotations

from typing import TypeVarTuple

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

Ts = TypeVarTuple("Ts")


def on_postgres(session: AsyncSession) -> bool:
    """True when the session talks to PostgreSQL (row locks exist and matter)."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def skipping_locked(query: Select[*Ts], session: AsyncSession) -> Select[*Ts]:
    """``query`` locking the rows it finds and skipping those another process holds."""
    return query.with_for_update(skip_locked=True) if on_postgres(session) else query


def locking(query: Select[*Ts], session: AsyncSession) -> Select[*Ts]:
    """``query`` locking the rows it finds until the commit (waiting for another holder)."""
    return query.with_for_update() if on_postgres(session) else query
