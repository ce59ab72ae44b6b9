"""The WHO-5 percentage score of a check-in, stored once its five items are answered.

Like the KOOS JR score (:func:`.answers.update_koos_score`): one ``who5_score`` row per
check-in, recomputed when an item is corrected; a missing item gives no score (no imputation).
"""

from __future__ import annotations

import structlog

from bot.db.models import CheckIn
from bot.db.queries import answers
from bot.domain.parsing import Parsed
from bot.domain.protocol import Indication
from bot.domain.who5 import who5_percentage, who5_scoring
from bot.services.conversation.evaluation import save_answer
from bot.services.conversation.turn import Turn

log = structlog.get_logger(__name__)

#: The protocol's ``score:`` of the WHO-5 items.
WHO5 = "who5"
#: The Answer row holding a check-in's WHO-5 percentage score.
WHO5_SCORE_ID = "who5_score"


async def update_who5_score(turn: Turn, *, checkin: CheckIn) -> None:
    """When the WHO-5 items of a check-in are all answered, store the percentage score."""
    session = turn.session
    items = [
        q.id
        for q in turn.protocol.questions_for(checkin.def_id, Indication(turn.episode.indication))
        if q.score == WHO5
    ]
    if len(items) != who5_scoring().items:
        return
    await session.flush()
    rows = await answers.understood_answers(session, checkin_id=checkin.id, question_ids=items)
    latest = {row.question_id: row.value for row in rows}
    try:
        score = who5_percentage([latest.get(item) for item in items])
    except ValueError:
        log.warning("who5_values_out_of_range", checkin_id=checkin.id)
        return
    if score is None:
        return
    row = await answers.answer_to(session, checkin_id=checkin.id, question_id=WHO5_SCORE_ID)
    if row is None:
        row = save_answer(
            turn,
            checkin=checkin,
            question_id=WHO5_SCORE_ID,
            kind="score",
            parsed=Parsed(status="ok", value=score),
        )
    row.value = score
    row.score = float(score)
