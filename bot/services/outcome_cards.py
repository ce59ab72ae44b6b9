"""What the outcome rules' alert cards say (issue 16): a new opioid, relief wearing off.

Kept apart from :mod:`bot.services.cards` so the card of each outcome rule reads its own
evidence: the painkiller classes of a new opioid, the month relief ended in.
"""

from __future__ import annotations

from typing import Any

from bot.domain.protocol import NewOpioidRule, ReliefEndedRule, Rule
from bot.domain.relief import month_of
from bot.i18n import t
from bot.services.painkiller_questions import describe_use


def describe_outcome_evidence(
    rule: Rule | None, item: dict[str, Any], language: str, *, when: str, answer: str | None
) -> str | None:
    """One evidence line of an outcome rule's card; None for any other rule.

    ``when`` is the day as staff read it ("J+62"), ``answer`` the pain answer with its question's
    label (see :mod:`bot.services.cards`).
    """
    day = item.get("day")
    if isinstance(rule, NewOpioidRule):
        value = item.get("value")
        use = describe_use(
            item.get("items") or (), value if isinstance(value, int) else None, language
        )
        return f"{use} · {when}" if when else use
    if isinstance(rule, ReliefEndedRule) and isinstance(day, int):
        parts = [t(language, "relief wearing off at month {month}", month=month_of(day))]
        reference = item.get("reference")
        if answer is not None:
            parts.append(answer)
        if reference is not None:
            parts.append(
                t(
                    language,
                    "reference {value} ({source})",
                    value=reference,
                    source=t(language, item.get("reference_source") or "baseline"),
                )
            )
        parts.append(when)
        return " · ".join(part for part in parts if part)
    return None
