"""Row locks that only PostgreSQL needs.

Several processes claim rows from one PostgreSQL database at once: ``FOR UPDATE SKIP LOCKED``
lets each take rows nobody else holds, without waiting for the others' commits. SQLite has a
single writer, which already serialises the claims (and has no ``FOR UPDATE``).
"""

from __future__ import annotations

from typing import Any, TypeVarTuple

from sqlalchemy import Select, select
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


def claimable(query: Select[Any], session: AsyncSession, *, name: str) -> Select[Any]:
    """The ids ``query`` finds, locked and skipping other holders, computed exactly once.

    Used as ``UPDATE … WHERE id IN (claimable)``. A plain ``IN (subquery … LIMIT n)`` is not
    enough on PostgreSQL: on a small table it may plan a nested-loop semi join that runs the
    subquery again for each row it updates, and so claim more than ``n`` rows. A materialised
    CTE is evaluated once.
    """
    due = (
        skipping_locked(query, session).cte(name).prefix_with("MATERIALIZED", dialect="postgresql")
    )
    return select(*due.c)
