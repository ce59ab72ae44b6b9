"""The deadlock retry: a lost deadlock runs the use case again, any other error does not."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from bot.services.retry import ATTEMPTS, retry_on_deadlock


class _Orig(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _error(sqlstate: str | None, message: str = "boom") -> DBAPIError:
    return DBAPIError("UPDATE checkins ...", {}, _Orig(message, sqlstate))


async def test_deadlock_is_retried_then_succeeds() -> None:
    calls = []

    @retry_on_deadlock
    async def action() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise _error("40P01", "deadlock detected")
        return "done"

    assert await action() == "done"
    assert len(calls) == 2


async def test_other_database_errors_are_not_retried() -> None:
    calls = []

    @retry_on_deadlock
    async def action() -> None:
        calls.append(1)
        raise _error("23505", "duplicate key")

    with pytest.raises(DBAPIError):
        await action()
    assert len(calls) == 1


async def test_a_persistent_deadlock_gives_up_after_the_last_attempt() -> None:
    calls = []

    @retry_on_deadlock
    async def action() -> None:
        calls.append(1)
        raise _error("40P01")

    with pytest.raises(DBAPIError):
        await action()
    assert len(calls) == ATTEMPTS
