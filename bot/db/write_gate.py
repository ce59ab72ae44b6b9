"""SQLite's one writer, handed over in order and urgent work first.

SQLite lets one transaction write at a time. A second writer gets "busy" and its thread sleeps
(1, 2, 5 … 100 ms) before trying again, so under load the lock passes to whoever happens to
wake first: a red flag's transaction waited behind ordinary replies for hundreds of
milliseconds, and the lock sat unused while waiters slept. Here a connection takes the
engine's :class:`WriteGate` at its transaction's first INSERT, UPDATE or DELETE (the very
statement at which SQLite takes its lock) and gives it back when that transaction commits or
rolls back, or when the connection goes back to the pool however it ends: writers queue in
the event loop, urgent ones (:mod:`bot.db.priority`) first. Reads never wait for it (WAL).
PostgreSQL, with row locks, has no gate.

A first version took the gate in the ORM session's events, from a flush that may write
nothing (SQLite takes no lock then) until the session's transaction ended; under load a
shutdown waited 30 s for it. Taken at the statement and given back with the connection's own
transaction, the gate is held exactly while SQLite's lock is.

The gate is taken from SQLAlchemy's synchronous cursor event, which runs inside the async
connection's greenlet: ``await_only`` waits there for the gate, as the driver's own calls do.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExecutionContext
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

from bot.db.priority import PriorityGate, is_urgent

#: Seconds a writer waits for the gate before failing as "database is locked" would (the
#: engine's busy timeout): a transaction that never ends must not hang every other writer.
WAIT_LIMIT = 30.0
#: The pool entry's info key while its connection holds the gate (value: taken for urgent work).
_HOLDS = "holds_sqlite_write_gate"
#: A textual statement that writes (an ORM or Core statement says so itself).
_WRITES = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


def gate_writes(engine: Engine) -> WriteGate:
    """Gate the writes of ``engine`` (the sync engine of an async SQLite engine)."""
    gate = WriteGate()
    gate.install(engine)
    _GATES[engine] = gate
    return gate


def write_gate_of(engine: Engine) -> WriteGate | None:
    """The gate of ``engine`` (None: not gated, e.g. PostgreSQL)."""
    return _GATES.get(engine)


class WriteGate:
    """One writing transaction at a time on one SQLite engine (see the module docstring)."""

    def __init__(self) -> None:
        self._gate = PriorityGate(1)

    @property
    def waiting(self) -> int:
        """Transactions waiting to write (tests, metrics)."""
        return self._gate.waiting

    def install(self, engine: Engine) -> None:
        """Listen to ``engine``'s statements, transactions and pooled connections."""
        event.listen(engine, "before_cursor_execute", self._before_statement)
        event.listen(engine, "commit", self._transaction_ended)
        event.listen(engine, "rollback", self._transaction_ended)
        for ended in ("checkin", "close"):
            event.listen(engine.pool, ended, self._connection_ended)
        for ended in ("reset", "invalidate", "soft_invalidate"):  # with a third argument
            event.listen(engine.pool, ended, self._connection_ended_with)

    def _before_statement(
        self,
        conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        context: ExecutionContext | None,
        _executemany: bool,
    ) -> None:
        info = conn.info
        if _HOLDS in info or not _writes(statement, context):
            return
        if context is not None and context.execution_options.get("isolation_level") == (
            "AUTOCOMMIT"
        ):
            return  # each statement its own transaction: SQLite's busy handler serves it
        urgent = is_urgent()
        if not self._gate.try_acquire(urgent=urgent):
            try:
                await_only(asyncio.wait_for(self._gate.acquire(urgent=urgent), WAIT_LIMIT))
            except TimeoutError as exc:  # as SQLite's busy timeout would: an outage, retried
                raise OperationalError("write gate", None, exc) from exc
        info[_HOLDS] = urgent

    def _transaction_ended(self, conn: Connection) -> None:
        self._give_back(conn.info)

    def _connection_ended(self, _dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        self._give_back(record.info)

    def _connection_ended_with(
        self, _dbapi_connection: Any, record: ConnectionPoolEntry, _detail: Any
    ) -> None:
        self._give_back(record.info)

    def _give_back(self, info: dict[Any, Any]) -> None:
        if _HOLDS in info:
            self._gate.release(urgent=info.pop(_HOLDS))


def _writes(statement: str, context: ExecutionContext | None) -> bool:
    if isinstance(context, DefaultExecutionContext) and (
        context.isinsert or context.isupdate or context.isdelete
    ):
        return True
    return _WRITES.search(statement) is not None
