"""Benchmark data, written with bulk inserts (core ``insert`` in chunks): 1,000,000 check-in rows
take seconds, not the hours the ORM would need.

Patients get explicit ids so no RETURNING round trip is needed; the bot never creates patients,
episodes or check-ins during a benchmark, so their sequences need not move.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.bench.server import chat_of, label_of
from bot.db.models import CheckIn, Episode, Patient, ProtocolVersion

CHUNK = 5_000
#: Check-ins of the real protocol (days after the procedure) used for the scale data.
COURSE = (0, 1, 2, 3, 7, 14, 42, 91, 182)


async def _insert(engine: AsyncEngine, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    chunk: list[dict[str, Any]] = []
    async with engine.begin() as connection:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK:
                await connection.execute(insert(table), chunk)
                chunk = []
        if chunk:
            await connection.execute(insert(table), chunk)


async def protocol_row(engine: AsyncEngine) -> int:
    """The id of the protocol version the running bot registered."""
    async with engine.connect() as connection:
        row = await connection.scalar(
            select(ProtocolVersion.id)
            .where(ProtocolVersion.protocol_id == "knee-cryoneurolysis")
            .order_by(ProtocolVersion.version.desc())
        )
    assert row is not None, "start the runtime first: it registers the protocol"
    return int(row)


async def patients(
    engine: AsyncEngine, first: int, count: int, *, now: datetime, procedure_at: datetime
) -> None:
    """``count`` consented patients with an active episode (ids ``first``..)."""
    version = await protocol_row(engine)
    await _insert(
        engine,
        Patient.__table__,
        (
            {"id": i, "label": label_of(i), "chat_id": chat_of(i), "created_at": now}
            for i in range(first, first + count)
        ),
    )
    await _insert(
        engine,
        Episode.__table__,
        (
            {
                "id": i,
                "patient_id": i,
                "protocol_version_id": version,
                "procedure_at": procedure_at,
                "time_zone": "Europe/Paris",
                "side": "left",
                "indication": "osteoarthritis",
                "language": "fr",
                "status": "active",
                "baseline_pain": 5,
                "baseline_source": "staff",
                "consent_version": 1,
                "consented_at": procedure_at,
                "reask_count": 0,
                "created_at": procedure_at,
                "created_by": "bench",
            }
            for i in range(first, first + count)
        ),
    )


def _checkin(i: int, episode: int, def_id: str, due: datetime, **extra: Any) -> dict[str, Any]:
    row = {
        "id": i,
        "episode_id": episode,
        "def_id": def_id,
        "due_at": due,
        "window_ends_at": due + timedelta(hours=10),
        "status": "scheduled",
        "attempts": 0,
        "question_index": 0,
        "reask_count": 0,
        "selection": [],
        "reminders_sent": 0,
        "sent_at": None,
        "closed_at": None,
        "claimed_at": None,
    }
    row.update(extra)
    return row


async def due_checkins(engine: AsyncEngine, first: int, count: int, *, due: datetime) -> None:
    """One day-1 check-in per patient ``first``.., all due at the same instant."""
    await _insert(
        engine,
        CheckIn.__table__,
        (_checkin(i, i, "d1", due) for i in range(first, first + count)),
    )


async def open_checkins(engine: AsyncEngine, first: int, count: int, *, sent: datetime) -> None:
    """One day-1 check-in per patient, already sent and waiting for the first answer."""
    await _insert(
        engine,
        CheckIn.__table__,
        (
            _checkin(i, i, "d1", sent, status="awaiting", sent_at=sent, claimed_at=sent, attempts=1)
            for i in range(first, first + count)
        ),
    )


async def course(engine: AsyncEngine, count: int, *, now: datetime) -> None:
    """``count`` patients enrolled over the last six months, each with the full course of
    check-ins: past ones answered, future ones scheduled (about 10 rows per patient)."""
    version = await protocol_row(engine)
    span = timedelta(days=182)

    def procedure(i: int) -> datetime:
        return now - span * (i / count)

    await _insert(
        engine,
        Patient.__table__,
        (
            {"id": i, "label": label_of(i), "chat_id": chat_of(i), "created_at": procedure(i)}
            for i in range(1, count + 1)
        ),
    )
    await _insert(
        engine,
        Episode.__table__,
        (
            {
                "id": i,
                "patient_id": i,
                "protocol_version_id": version,
                "procedure_at": procedure(i),
                "time_zone": "Europe/Paris",
                "side": "left",
                "indication": "osteoarthritis",
                "language": "fr",
                "status": "active",
                "baseline_pain": 5,
                "baseline_source": "staff",
                "consent_version": 1,
                "consented_at": procedure(i),
                "reask_count": 0,
                "created_at": procedure(i),
                "created_by": "bench",
            }
            for i in range(1, count + 1)
        ),
    )
    names = ("d0_evening", "d1", "d2", "d3", "d7", "d14", "w6", "m3", "m6")

    def rows() -> Iterator[dict[str, Any]]:
        n = 0
        for i in range(1, count + 1):
            for name, days in zip(names, COURSE, strict=True):
                n += 1
                due = procedure(i) + timedelta(days=days, hours=8)
                if due < now - timedelta(hours=10):
                    yield _checkin(n, i, name, due, status="answered", sent_at=due, closed_at=due)
                else:
                    yield _checkin(n, i, name, due + timedelta(days=1))
            # A tenth row per patient (a 12-month visit), far in the future: never due here.
            n += 1
            yield _checkin(n, i, "m12", procedure(i) + timedelta(days=365))

    await _insert(engine, CheckIn.__table__, rows())
