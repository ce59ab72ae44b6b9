"""Updates set aside because they could not be read or handled (see bot/telegram/intake.py).

Staff see how many there are (the morning digest, the ``cryo_dead_letters_total`` metric);
their content stays in the database, beside the rest of the health data, and is never logged
or shown in a chat.
"""

from __future__ import annotations

import json
from typing import Any

from bot.db.models import DeadLetter
from bot.services.context import ServiceContext


def raw_json(raw: dict[str, Any]) -> str:
    """An update as stored in a dead letter or the polling inbox (compact JSON, valid on both
    databases)."""
    return json.dumps(raw, separators=(",", ":"))


async def set_aside(
    ctx: ServiceContext, *, update_id: int, raw_json: str, reason: str, tries: int
) -> None:
    """Store the update once (a second delivery of the same update changes nothing)."""
    async with ctx.sessions.begin() as session:
        if await session.get(DeadLetter, update_id) is not None:
            return
        session.add(
            DeadLetter(
                update_id=update_id,
                raw=raw_json,
                reason=reason[:64],
                tries=tries,
                created_at=ctx.clock.now(),
            )
        )
