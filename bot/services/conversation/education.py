"""Patients' questions about the expected course, answered with the protocol's own words.

"The skin below the kneecap feels numb, is that normal?" gets the protocol's text about the
numb patch (what is expected, then when to call), not just "your message has been saved". It
is only ever said after the message was read for red flags and none was found: a red flag is
never "normal". The message itself is still saved for staff by the caller.
"""

from __future__ import annotations

from bot.domain.parsing import asked_topics
from bot.services.conversation.turn import Turn


def explain_expected(turn: Turn, *, text: str) -> bool:
    """Answer a question about an expected effect from the protocol; True when answered."""
    education = turn.protocol.education
    topics = asked_topics(text, education)
    if education is None or not topics:
        return False
    unit = turn.ctx.unit
    turn.outbox.say(
        "\n\n".join(
            education.topics[topic]
            .text.get(turn.language)
            .format(unit_phone=unit.unit_phone, oncall_phone=unit.oncall_phone)
            for topic in topics
        )
    )
    turn.audit("education_sent", topics=list(topics))
    return True
