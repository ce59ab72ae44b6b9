"""What patients said: the answers of an episode or a check-in, as the conversation reads them."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Answer, CheckIn


async def answers_with_checkin(
    session: AsyncSession, *, episode_id: int
) -> list[tuple[Answer, str | None]]:
    """Every answer of the episode in the order given, with its check-in's definition id (None
    outside a check-in): what the rules read as the history."""
    rows = await session.execute(
        select(Answer, CheckIn.def_id)
        .outerjoin(CheckIn, Answer.checkin_id == CheckIn.id)
        .where(Answer.episode_id == episode_id)
        .order_by(Answer.created_at, Answer.id)
    )
    return [(answer, def_id) for answer, def_id in rows]


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
