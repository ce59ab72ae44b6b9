"""Telegram's message budgets shared through PostgreSQL: several bot processes, one pace.

Each budget is one ``send_pace`` row holding the earliest moment the next message may leave
(GCRA, "virtual scheduling"), in the database's own clock so the processes need no common
clock. Reserving ``count`` messages is one atomic upsert: it takes the next ``count`` slots,
``interval`` seconds apart, and moves the row past them; ``tolerance`` lets an idle budget
send that many seconds' worth at once (a group's burst of 20). The caller learns how long to
wait before each of its messages. PostgreSQL only: on SQLite there is one process, which
paces itself.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_RESERVE = text(
    """
    WITH now AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t)
    INSERT INTO send_pace AS p (name, next_slot)
    SELECT :name, now.t - CAST(:tolerance AS float8) + CAST(:span AS float8) FROM now
    ON CONFLICT (name) DO UPDATE
        SET next_slot = GREATEST(p.next_slot, EXCLUDED.next_slot - CAST(:span AS float8))
            + CAST(:span AS float8)
    RETURNING p.next_slot - CAST(:span AS float8) AS first, (SELECT t FROM now) AS now
    """
)

_HOLD_BACK = text(
    """
    WITH now AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t)
    INSERT INTO send_pace AS p (name, next_slot)
    SELECT :name, now.t + CAST(:seconds AS float8) FROM now
    ON CONFLICT (name) DO UPDATE SET next_slot = GREATEST(p.next_slot, EXCLUDED.next_slot)
    """
)


async def reserve_slots(
    connection: AsyncConnection, *, name: str, count: int, interval: float, tolerance: float = 0.0
) -> list[float]:
    """Take the next ``count`` slots of budget ``name``: the seconds to wait before each."""
    row = (
        await connection.execute(
            _RESERVE, {"name": name, "span": count * interval, "tolerance": tolerance}
        )
    ).one()
    first, now = float(row.first), float(row.now)
    return [max(0.0, first + index * interval - now) for index in range(count)]


async def hold_back(connection: AsyncConnection, *, name: str, seconds: float) -> None:
    """Telegram said wait (a 429 naming no chat): no process sends under ``name`` before then."""
    await connection.execute(_HOLD_BACK, {"name": name, "seconds": seconds})
