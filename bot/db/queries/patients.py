"""A patient as staff reach them (by the unit's label), their follow-ups and invitation tokens,
and the rows an erasure rewrites.

Staff name a patient by label, never by chat: the label is the unit's own pseudonymous id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    Answer,
    AuditEvent,
    DeadLetter,
    EnrolmentToken,
    Episode,
    InboxUpdate,
    OwedMessage,
    Patient,
)
from bot.db.queries._locking import locking
from bot.domain.states import LIVE_STATUSES


async def patient_by_label(session: AsyncSession, *, label: str) -> Patient | None:
    """The patient the unit calls ``label`` (erased ones too: the caller tells staff)."""
    return await session.scalar(select(Patient).where(Patient.label == label))


async def patient_by_chat(session: AsyncSession, *, chat_id: int) -> Patient | None:
    """The patient linked to this Telegram chat: one chat follows one patient."""
    return await session.scalar(select(Patient).where(Patient.chat_id == chat_id))


async def latest_episode(
    session: AsyncSession, *, patient_id: int, for_update: bool = False
) -> Episode | None:
    """The patient's latest follow-up, the one staff commands act on; ``for_update`` locks it
    (PostgreSQL) so a staff change and the conversation do not interleave."""
    query = select(Episode).where(Episode.patient_id == patient_id).order_by(Episode.id.desc())
    if for_update:
        query = locking(query, session)
    return await session.scalar(query.limit(1))


async def live_episode(session: AsyncSession, *, patient_id: int) -> Episode | None:
    """The patient's follow-up still in progress, if any: a new enrolment must not start a
    second one beside it."""
    return await session.scalar(
        select(Episode).where(Episode.patient_id == patient_id, Episode.status.in_(LIVE_STATUSES))
    )


async def unused_tokens(session: AsyncSession, *, episode_id: int) -> list[EnrolmentToken]:
    """The episode's invitation links not yet opened (a new link or a stop expires them)."""
    return list(
        await session.scalars(
            select(EnrolmentToken).where(
                EnrolmentToken.episode_id == episode_id, EnrolmentToken.used_at.is_(None)
            )
        )
    )


async def token_by_hash(session: AsyncSession, *, token_hash: str) -> EnrolmentToken | None:
    """The invitation whose token hashes to ``token_hash`` (only hashes are stored)."""
    return await session.scalar(
        select(EnrolmentToken).where(EnrolmentToken.token_hash == token_hash)
    )


async def stored_file_paths(session: AsyncSession, *, answer_ids: Collection[int]) -> list[str]:
    """The local copies (photos) of these answers, to delete with them."""
    paths = await session.scalars(
        select(Answer.file_path).where(Answer.id.in_(answer_ids), Answer.file_path.is_not(None))
    )
    return [path for path in paths if path]


async def anonymise_chat_actor(session: AsyncSession, *, chat_id: int) -> None:
    """Audit events the patient's chat caused keep what happened, no longer which chat."""
    await session.execute(
        update(AuditEvent)
        .where(AuditEvent.actor == f"chat:{chat_id}")
        .values(actor="chat:erased")
        .execution_options(synchronize_session=False)
    )


async def delete_owed_to_chat(session: AsyncSession, *, chat_id: int) -> int:
    """Erase the messages owed to a chat (sent or not): they quote the chat id and its texts."""
    result = await session.execute(
        delete(OwedMessage)
        .where(OwedMessage.chat_id == chat_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_dead_letters_from_chat(session: AsyncSession, *, chat_id: int) -> int:
    """Erase the updates set aside from a chat: their raw JSON may hold the patient's words.

    Dead letters are few and have no chat column (an unreadable update may lack one), so each
    is read: a chat or user id anywhere in it, or, when the JSON itself is broken, the id as a
    whole number in the text.
    """
    doomed = [
        update_id
        for update_id, raw in await session.execute(select(DeadLetter.update_id, DeadLetter.raw))
        if _mentions_chat(raw, chat_id)
    ]
    if doomed:
        await session.execute(
            delete(DeadLetter)
            .where(DeadLetter.update_id.in_(doomed))
            .execution_options(synchronize_session=False)
        )
    return len(doomed)


async def delete_inbox_from_chat(session: AsyncSession, *, chat_id: int) -> int:
    """Erase the chat's updates still waiting in the polling inbox (their raw JSON may hold the
    patient's words; the inbox holds only the few updates not handled yet)."""
    doomed = [
        (bot_id, update_id)
        for bot_id, update_id, raw in await session.execute(
            select(InboxUpdate.bot_id, InboxUpdate.update_id, InboxUpdate.raw)
        )
        if _mentions_chat(raw, chat_id)
    ]
    if doomed:
        await session.execute(
            delete(InboxUpdate)
            .where(tuple_(InboxUpdate.bot_id, InboxUpdate.update_id).in_(doomed))
            .execution_options(synchronize_session=False)
        )
    return len(doomed)


def _mentions_chat(raw: str, chat_id: int) -> bool:
    try:
        update = json.loads(raw)
    except ValueError:
        return re.search(rf"(?<![\d.]){chat_id}(?![\d.])", raw) is not None
    return chat_id in set(_ids_in(update))


def _ids_in(node: Any) -> Iterator[int]:
    """Every ``id`` of a ``chat``, ``from``, ``user`` or ``sender_chat`` object in an update."""
    if isinstance(node, dict):
        for key, value in node.items():
            is_party = key in ("chat", "from", "user", "sender_chat")
            if is_party and isinstance(value, dict) and isinstance(value.get("id"), int):
                yield value["id"]
            yield from _ids_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _ids_in(item)
