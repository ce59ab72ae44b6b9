"""Retry a use case whose transaction PostgreSQL chose as a deadlock victim.

Staff actions (pause, resume, stop, move) lock an episode and then its check-ins, while the
dispatcher claims check-ins first; PostgreSQL breaks the rare cycle by aborting one transaction
(SQLSTATE 40P01). The aborted use case changed nothing, so running it again is safe.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError

P = ParamSpec("P")
R = TypeVar("R")
ATTEMPTS = 3


def is_deadlock(exc: DBAPIError) -> bool:
    """True when the database aborted the transaction to break a deadlock."""
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code == "40P01" or "deadlock detected" in str(orig).lower()


def retry_on_deadlock(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run ``function`` again (up to :data:`ATTEMPTS` times) when it lost a deadlock."""

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await function(*args, **kwargs)
            except DBAPIError as exc:
                if attempt == ATTEMPTS or not is_deadlock(exc):
                    raise
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    return wrapper
