"""Scores of a check-in's questionnaires (KOOS JR, WHO-5), stored once all their items are
answered.

One score row per instrument and check-in, recomputed when an item is corrected: ``value`` is
the score rounded half up to an integer (what tables and alert cards show), ``score`` the exact
score. The last understood answer of each item counts; a missing item gives no score (neither
instrument imputes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from bot.db.models import CheckIn
from bot.db.queries import answers
from bot.domain.parsing import Parsed
from bot.domain.protocol import Indication
from bot.domain.scores import KOOS_JR_ITEMS, koos_jr_interval
from bot.domain.who5 import who5_percentage, who5_scoring
from bot.services.conversation.evaluation import save_answer
from bot.services.conversation.turn import Turn

log = structlog.get_logger(__name__)

#: The protocol's ``score:`` of the WHO-5 items.
WHO5 = "who5"


@dataclass(frozen=True)
class _Instrument:
    """How a questionnaire (a protocol ``score:`` name) is totalled, and where it is stored."""

    items: Callable[[], int]
    total: Callable[[Sequence[int | None]], float | None]
    row_id: str


_INSTRUMENTS = {
    "koos_jr": _Instrument(lambda: KOOS_JR_ITEMS, koos_jr_interval, "koos_jr_score"),
    WHO5: _Instrument(lambda: who5_scoring().items, who5_percentage, "who5_score"),
}


async def update_score(turn: Turn, *, checkin: CheckIn, instrument: str | None) -> None:
    """When every item of ``instrument`` in this check-in is answered, store its score (no
    instrument, or one the bot does not total: nothing to do)."""
    spec = _INSTRUMENTS.get(instrument) if instrument else None
    if spec is None:
        return
    session = turn.session
    items = [
        q.id
        for q in turn.protocol.questions_for(checkin.def_id, Indication(turn.episode.indication))
        if q.score == instrument
    ]
    if len(items) != spec.items():
        return
    await session.flush()
    rows = await answers.understood_answers(session, checkin_id=checkin.id, question_ids=items)
    latest = {row.question_id: row.value for row in rows}
    try:
        score = spec.total([latest.get(item) for item in items])
    except ValueError:
        log.warning(f"{instrument}_values_out_of_range", checkin_id=checkin.id)
        return
    if score is None:
        return
    rounded = int(score + 0.5)
    row = await answers.answer_to(session, checkin_id=checkin.id, question_id=spec.row_id)
    if row is None:
        row = save_answer(
            turn,
            checkin=checkin,
            question_id=spec.row_id,
            kind="score",
            parsed=Parsed(status="ok", value=rounded),
        )
    row.value = rounded
    row.score = float(score)
