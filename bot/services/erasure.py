"""Erasure: the patient asks (``/delete``), staff decide and complete (``python -m bot erase``).

The request is recorded on the patient row and audited, and the staff chat is told; the unit
decides under its retention policy. Completing it really removes the data: every row hanging off
the patient's episodes (answers with their raw texts and file ids, check-ins, alerts and their
evidence, enrolment tokens, messages the unit sent, and any table added later with a foreign key
to them: the walk follows the schema, so a new table cannot be forgotten), the updates from the
patient's chat set aside as unreadable, the local photo copies and the chat id. Audit events
keep what happened and when, but lose their links to the erased rows, and ``chat:<id>`` actors
are anonymised. What is left is a stub: the patient row (the unit's own label, created, erasure
requested and erased times) and one ``patient_erased`` audit event with counts. Copies held by
Telegram (the chat, the files, alert cards already posted in the staff group) are out of the
bot's reach.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    Answer,
    AuditEvent,
    Base,
    DeadLetter,
    InboxUpdate,
    OwedMessage,
    Patient,
)
from bot.db.queries.patients import (
    anonymise_chat_actor,
    delete_dead_letters_from_chat,
    delete_inbox_from_chat,
    delete_owed_to_chat,
    patient_by_label,
    stored_file_paths,
)
from bot.errors import UsageError
from bot.services import audit
from bot.services.context import ServiceContext

log = structlog.get_logger(__name__)

_AUDIT = AuditEvent.__tablename__
_PATIENTS = Patient.__tablename__


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed (counts only)."""

    label: str
    rows: dict[str, int]
    files: int
    requested_at: datetime | None


@dataclass(frozen=True)
class ErasureCandidate:
    """A patient staff are about to erase: whether they asked (``/delete``) and when."""

    label: str
    requested_at: datetime | None


def record_request(
    session: AsyncSession, *, patient: Patient, episode_id: int | None, now: datetime
) -> bool:
    """Record a patient's erasure request; False when one is already waiting for staff."""
    if patient.erasure_requested_at is not None:
        return False
    patient.erasure_requested_at = now
    audit.record(
        session, at=now, actor="patient", action="erasure_requested", episode_id=episode_id
    )
    return True


async def candidate(ctx: ServiceContext, *, label: str) -> ErasureCandidate:
    """The patient ``label`` as staff confirm an erasure (UsageError when there is none)."""
    async with ctx.sessions() as session:
        patient = await _erasable(session, label)
        return ErasureCandidate(label=label, requested_at=patient.erasure_requested_at)


async def _erasable(session: AsyncSession, label: str) -> Patient:
    patient = await patient_by_label(session, label=label)
    if patient is None:
        raise UsageError(f"no patient has the label {label!r}")
    if patient.erased_at is not None:
        raise UsageError(f"patient {label} was already erased ({patient.erased_at:%Y-%m-%d})")
    return patient


async def erase(ctx: ServiceContext, *, label: str, actor: str = "cli") -> ErasureReport:
    """Remove everything stored about the patient ``label`` except the audit stub."""
    now = ctx.clock.now()
    media_root = Path(ctx.unit.media_dir)
    async with ctx.sessions.begin() as session:
        patient = await _erasable(session, label)
        doomed = await _collect(session, patient.id)
        answer_ids = doomed.get(Answer.__tablename__, set())
        files = [Path(path) for path in await stored_file_paths(session, answer_ids=answer_ids)]
        await _unlink_audit(session, doomed)
        rows = await _delete(session, doomed)
        if patient.chat_id is not None:
            await anonymise_chat_actor(session, chat_id=patient.chat_id)
            # Messages owed before the chat was linked to an episode carry only the chat id.
            rows[OwedMessage.__tablename__] = rows.get(OwedMessage.__tablename__, 0) + (
                await delete_owed_to_chat(session, chat_id=patient.chat_id)
            )
            rows[DeadLetter.__tablename__] = await delete_dead_letters_from_chat(
                session, chat_id=patient.chat_id
            )
            rows[InboxUpdate.__tablename__] = await delete_inbox_from_chat(
                session, chat_id=patient.chat_id
            )
        patient.chat_id = None
        patient.erased_at = now
        # Files go before the commit: if the commit then failed, running erase again finishes it.
        removed = await asyncio.to_thread(_remove_files, files, media_root)
        audit.record(
            session,
            at=now,
            actor=actor,
            action="patient_erased",
            patient_id=patient.id,
            rows=rows,
            files=removed,
            requested_at=(
                patient.erasure_requested_at.isoformat() if patient.erasure_requested_at else None
            ),
        )
        requested_at = patient.erasure_requested_at
    log.info("patient_erased", patient_id=patient.id, files=removed)
    return ErasureReport(label=label, rows=rows, files=removed, requested_at=requested_at)


def _primary_key(table: Table) -> Any:
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        raise RuntimeError(
            f"erasure needs a single-column primary key on {table.name} (it references a "
            "patient's rows): give it one, or teach bot/services/erasure.py to delete it"
        )
    return columns[0]


async def _collect(session: AsyncSession, patient_id: int) -> dict[str, set[Any]]:
    """Primary keys of every row that depends on the patient, table by table.

    ``sorted_tables`` lists parents before children, so one pass reaches grandchildren too.
    """
    doomed: dict[str, set[Any]] = {_PATIENTS: {patient_id}}
    for table in Base.metadata.sorted_tables:
        if table.name in (_PATIENTS, _AUDIT):
            continue
        for fk in table.foreign_keys:
            parents = doomed.get(fk.column.table.name)
            if not parents:
                continue
            key = _primary_key(table)
            found = await session.scalars(select(key).where(fk.parent.in_(parents)))
            doomed.setdefault(table.name, set()).update(found)
    return doomed


async def _unlink_audit(session: AsyncSession, doomed: dict[str, set[Any]]) -> None:
    """Audit events stay (what, when, who on staff) but no longer point at erased rows."""
    table = Base.metadata.tables[_AUDIT]
    for fk in table.foreign_keys:
        parents = doomed.get(fk.column.table.name)
        if parents and fk.column.table.name != _PATIENTS:
            await session.execute(
                update(table).where(fk.parent.in_(parents)).values({fk.parent.name: None})
            )


async def _delete(session: AsyncSession, doomed: dict[str, set[Any]]) -> dict[str, int]:
    """Delete children before parents; returns rows deleted per table."""
    counts: dict[str, int] = {}
    for table in reversed(Base.metadata.sorted_tables):
        ids = doomed.get(table.name)
        if not ids or table.name == _PATIENTS:
            continue
        await session.execute(delete(table).where(_primary_key(table).in_(ids)))
        counts[table.name] = len(ids)
    return counts


def _remove_files(files: list[Path], root: Path) -> int:
    """Delete local copies that live under MEDIA_DIR (never anything else), then empty folders."""
    root = root.resolve()
    removed = 0
    folders: set[Path] = set()
    for path in files:
        resolved = path.resolve()
        if root not in resolved.parents:
            continue
        if resolved.exists():
            resolved.unlink()
            removed += 1
        folders.add(resolved.parent)
    for folder in folders:
        if folder != root and folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
    return removed
