"""What patients said: the answers of an episode or a check-in, as the conversation reads them."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.db.models import Answer, CheckIn

#: The key of a prefetched history in ``session.info``: (episode id, rows read).
_HISTORY = "prefetched_history"


async def _read_history(session: AsyncSession, episode_id: int) -> list[tuple[Answer, str | None]]:
    rows = await session.execute(
        select(Answer, CheckIn.def_id)
        .outerjoin(CheckIn, Answer.checkin_id == CheckIn.id)
        .where(Answer.episode_id == episode_id)
        .order_by(Answer.created_at, Answer.id)
    )
    return [(answer, def_id) for answer, def_id in rows]


async def prefetch_history(session: AsyncSession, *, episode_id: int) -> None:
    """Read the episode's answers now, before the turn writes anything: the rules read them
    later (:func:`answers_with_checkin`) without a second query, and on SQLite the read is not
    made while holding the one write lock."""
    session.info[_HISTORY] = (episode_id, await _read_history(session, episode_id))


def _added_since(
    session: Session, episode_id: int, known: set[int]
) -> list[tuple[Answer, str | None]] | None:
    """The episode's answers this session added after the prefetch, with their check-in's
    definition id; None when one's check-in is not in the session (then read them all)."""
    added = []
    candidates = [*session.new, *session.identity_map.values()]
    for row in candidates:
        if not isinstance(row, Answer) or row.episode_id != episode_id or id(row) in known:
            continue
        known.add(id(row))
        def_id = None
        if row.checkin_id is not None:
            checkin = session.identity_map.get(session.identity_key(CheckIn, row.checkin_id))
            if not isinstance(checkin, CheckIn):
                return None
            def_id = checkin.def_id
        added.append((row, def_id))
    return added


def _order_key(item: tuple[Answer, str | None]) -> tuple[object, ...]:
    """Time, then id; an unsaved row (no id yet) after the saved ones of its time (the sort is
    stable: unsaved rows keep the order they were added in)."""
    answer = item[0]
    return (answer.created_at, answer.id is None, answer.id or 0)


async def answers_with_checkin(
    session: AsyncSession, *, episode_id: int
) -> list[tuple[Answer, str | None]]:
    """Every answer of the episode in the order given, with its check-in's definition id (None
    outside a check-in): what the rules read as the history. Prefetched rows plus the answers
    added since, when :func:`prefetch_history` ran in this session."""
    prefetched = session.info.get(_HISTORY)
    if prefetched is not None and prefetched[0] == episode_id:
        rows: list[tuple[Answer, str | None]] = prefetched[1]
        sync = session.sync_session
        if not sync.deleted:
            added = _added_since(sync, episode_id, {id(answer) for answer, _def in rows})
            if added is not None:
                # Not flushed for ids: a row added in this turn comes after every older one
                # of its time, in the order added; the writes (and, on SQLite, the one write
                # lock) wait for the end of the turn.
                return sorted([*rows, *added], key=_order_key)
    return await _read_history(session, episode_id)


async def answer_from_message(
    session: AsyncSession, *, episode_id: int, message_id: int
) -> Answer | None:
    """The latest answer saved from Telegram message ``message_id`` (the one an edit corrects)."""
    return await session.scalar(
        select(Answer)
        .where(Answer.episode_id == episode_id, Answer.telegram_message_id == message_id)
        .order_by(Answer.id.desc())
    )


async def understood_answers(
    session: AsyncSession, *, checkin_id: int, question_ids: Collection[str]
) -> list[Answer]:
    """The check-in's understood (``ok``) answers to ``question_ids``, oldest first."""
    rows = await session.scalars(
        select(Answer)
        .where(
            Answer.checkin_id == checkin_id,
            Answer.question_id.in_(question_ids),
            Answer.status == "ok",
        )
        .order_by(Answer.created_at, Answer.id)
    )
    return list(rows)


async def answer_to(session: AsyncSession, *, checkin_id: int, question_id: str) -> Answer | None:
    """The check-in's (first) answer row for ``question_id``."""
    return await session.scalar(
        select(Answer)
        .where(Answer.checkin_id == checkin_id, Answer.question_id == question_id)
        .order_by(Answer.id)
    )


async def has_understood_answer(session: AsyncSession, *, checkin_id: int) -> bool:
    """True when the patient answered at least one question of the check-in understandably
    (a skip counts: it is an answer)."""
    found = await session.scalar(
        select(Answer.id).where(Answer.checkin_id == checkin_id, Answer.status != "unclear")
    )
    return found is not None
