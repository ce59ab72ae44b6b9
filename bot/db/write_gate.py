"""SQLite's one writer, handed over in order and urgent work first.

SQLite lets one transaction write at a time. A second writer gets "busy" and its thread sleeps
(1, 2, 5 … 100 ms) before trying again, so under load the lock passes to whoever happens to
wake first: a red flag's transaction, or the poller keeping a batch in its inbox, waited
behind ordinary replies for hundreds of milliseconds, and the lock sat unused while waiters
slept. Here a session takes :class:`WriteGate` before its first write (a flush, an INSERT,
UPDATE or DELETE) and gives it back when its transaction ends: writers queue in the event
loop, urgent ones (:mod:`bot.db.priority`) first, and the next one starts the moment the
previous commits. Reads never wait for it (WAL). PostgreSQL, with row locks, has no gate.

The gate is taken from SQLAlchemy's synchronous session events, which run inside the async
session's greenlet: ``await_only`` waits there for the gate, as the driver's own calls do.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.util import await_only

from bot.db.priority import PriorityGate, is_urgent

#: Seconds a writer waits for the gate before failing as "database is locked" would (the
#: engine's busy timeout): a transaction that never ends must not hang every other writer.
WAIT_LIMIT = 30.0
#: The session.info key of a session whose transaction holds the gate (its value: taken for
#: urgent work).
_HOLDS = "holds_sqlite_write_gate"


class WriteGate:
    """One writing transaction at a time on a SQLite database (see the module docstring)."""

    def __init__(self) -> None:
        self._gate = PriorityGate(1)

    @property
    def waiting(self) -> int:
        """Transactions waiting to write (tests, metrics)."""
        return self._gate.waiting

    def session_class(self) -> type[Session]:
        """A synchronous session class whose sessions pass the gate before writing (the
        ``sync_session_class`` of the async sessions of one SQLite engine)."""
        gated: type[Session] = type("GatedSession", (Session,), {"write_gate": self})
        event.listen(gated, "before_flush", self._before_flush)
        event.listen(gated, "do_orm_execute", self._before_execute)
        event.listen(gated, "after_transaction_end", self._after_transaction_end)
        return gated

    def _take(self, session: Session) -> None:
        if _HOLDS in session.info:
            return
        # The connection first, then the gate: a transaction holding the gate while it waits
        # for the pool, which the transactions queued at the gate have emptied, waits forever.
        session.connection()
        urgent = is_urgent()
        try:
            await_only(asyncio.wait_for(self._gate.acquire(), WAIT_LIMIT))
        except TimeoutError as exc:  # as SQLite's own busy timeout would: an outage, retried
            raise OperationalError("write gate", None, exc) from exc
        session.info[_HOLDS] = urgent

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        self._take(session)

    def _before_execute(self, state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            self._take(state.session)

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None and _HOLDS in session.info:
            self._gate.release(urgent=session.info.pop(_HOLDS))
