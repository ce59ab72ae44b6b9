"""The typed states: what is stored, and that a typo cannot reach the database."""

from __future__ import annotations

import pytest

from bot.db.models import AwaitingType, StateType
from bot.domain.states import BASELINE, CONSENT, Awaiting, AwaitingKind, CheckInStatus


@pytest.mark.parametrize(
    ("value", "stored"),
    [(CONSENT, "consent"), (BASELINE, "baseline"), (Awaiting.clarify("fever"), "clarify:fever")],
)
def test_awaiting_round_trips_through_its_stored_form(value: Awaiting, stored: str) -> None:
    assert value.stored() == stored
    assert Awaiting.parse(stored) == value
    column = AwaitingType()
    assert column.process_bind_param(value, None) == stored  # type: ignore[arg-type]
    assert column.process_result_value(stored, None) == value  # type: ignore[arg-type]


def test_a_clarification_names_its_flag_and_nothing_else_does() -> None:
    with pytest.raises(ValueError):
        Awaiting(AwaitingKind.CLARIFY)
    with pytest.raises(ValueError):
        Awaiting(AwaitingKind.CONSENT, "fever")
    with pytest.raises(ValueError):
        Awaiting.parse("consnet")


def test_a_state_typo_is_refused_before_it_reaches_the_database() -> None:
    column = StateType(CheckInStatus)
    assert column.process_bind_param(CheckInStatus.AWAITING, None) == "awaiting"  # type: ignore[arg-type]
    assert column.process_result_value("missed", None) is CheckInStatus.MISSED  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        column.process_bind_param("awaitng", None)  # type: ignore[arg-type]
