"""What the running bot learnt from Telegram, kept for one-shot commands (``enroll`` prints a
link with the bot's @username without calling getMe when the bot has started once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import BotFact
from bot.db.queries._locking import on_postgres


def username_key(token: str) -> str:
    """The fact's key: per bot id (the token's first part, not a secret), so a username learnt
    from the sandbox or another bot is never used for this one."""
    return f"bot_username:{token.split(':', 1)[0]}"


async def remember_username(
    session: AsyncSession, *, token: str, username: str, at: datetime
) -> None:
    """Store the @username getMe returned for this token (an upsert: processes starting
    together write the same row)."""
    insert = postgresql.insert if on_postgres(session) else sqlite.insert
    statement = insert(BotFact).values(key=username_key(token), value=username, updated_at=at)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[BotFact.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    )


async def stored_username(session: AsyncSession, *, token: str) -> str | None:
    """The @username stored at this bot's last start (None before its first start)."""
    fact = await session.get(BotFact, username_key(token))
    return fact.value if fact is not None else None
