"""SQLite's one writer, handed over in order and urgent work first; never a new way to hang.

SQLite lets one transaction write at a time. Another writer gets "busy", and its thread sleeps
(1, 2, 5 … 100 ms) before trying again, so under load the lock goes to whoever wakes at the
right moment: in a 1,000-reply burst a red flag's first write waited 130-730 ms for the lock,
and the polling inbox's INSERT once 2.6 s (every later urgent update waits for it). Here a
connection takes its engine's :class:`WriteGate` at its transaction's first writing statement
and gives it back when that transaction commits or rolls back, or when the connection goes back
to the pool however it ends. Writers queue in the event loop, urgent work
(:mod:`bot.db.priority`) first, and the lock is never idle while one waits. Reads never take
it (WAL). PostgreSQL, with row locks, has no gate.

**Advisory, so it cannot deadlock.** Two earlier versions made the gate a hard lock, and under
load one shutdown waited 30 s and one test hung for minutes. A hard gate turns any hidden wait
into a deadlock: a writer holding the gate that needs a second connection, or that waits for
work queued behind the gate. Here a writer waits at most :data:`ADVISORY_WAIT` for the gate,
then goes on without it, and SQLite's busy handler decides, as it did before the gate. The
worst case is the old behaviour, 2 s later. A bypass is counted (``sqlite_write_gate_bypassed``
in the log, and a metric), so a hidden wait shows up instead of hanging.

Which statements write is read from the SQL text (cached per statement): everything except
``SELECT``, ``EXPLAIN``, a ``WITH`` query that does not modify, and transaction control. When
in doubt it counts as a write, because an unseen write would hold SQLite's lock outside the gate.

The gate is taken from SQLAlchemy's synchronous cursor event, which runs inside the async
connection's greenlet: ``await_`` waits there for the gate, as the driver's own calls do.
"""

from __future__ import annotations

import asyncio
import functools
import re
import weakref
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExecutionContext
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_
from sqlalchemy.util.concurrency import in_greenlet

from bot.db.priority import PriorityGate, is_urgent
from bot.metrics import SQLITE_WRITE_GATE_BYPASSED

log = structlog.get_logger(__name__)

#: Seconds a writer waits for the gate before going on without it (module docstring).
ADVISORY_WAIT = 2.0
#: The pool entry's info key while its connection holds the gate (value: taken for urgent work).
_HOLDS = "holds_sqlite_write_gate"
_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*\n|/\*.*?\*/)+", re.DOTALL)
_MODIFIES = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE|UPSERT)\b", re.IGNORECASE)
_READS = frozenset({"SELECT", "EXPLAIN", "VALUES"})
_CONTROL = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})

_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


def gate_writes(engine: Engine) -> WriteGate:
    """Gate the writes of ``engine`` (the sync engine of an async SQLite file engine)."""
    gate = WriteGate()
    gate.install(engine)
    _GATES[engine] = gate
    return gate


def write_gate_of(engine: Engine) -> WriteGate | None:
    """The gate of ``engine`` (None: not gated, e.g. PostgreSQL)."""
    return _GATES.get(engine)


@functools.lru_cache(maxsize=2048)
def writes(statement: str) -> bool:
    """True unless ``statement`` only reads or controls the transaction (module docstring)."""
    text = _COMMENTS.sub("", statement, count=1)
    word = text[:12].split(None, 1)[0].upper() if text.strip() else ""
    word = word.rstrip("(;")
    if word in _READS or word in _CONTROL:
        return False
    if word == "WITH":
        return _MODIFIES.search(text) is not None
    return True  # INSERT, UPDATE, DELETE, REPLACE, DDL, PRAGMA, VACUUM, anything unknown


class WriteGate:
    """One writing transaction at a time on one SQLite engine (see the module docstring)."""

    def __init__(self, wait: float = ADVISORY_WAIT) -> None:
        self._gate = PriorityGate(1)
        #: Seconds a writer waits for the gate before going on without it.
        self.wait = wait

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
        if _HOLDS in info or not writes(statement) or not in_greenlet():
            return
        if context is not None and context.execution_options.get("isolation_level") == (
            "AUTOCOMMIT"
        ):
            return  # each statement its own transaction, with no end to give the gate back at
        urgent = is_urgent()
        try:
            await_(asyncio.wait_for(self._gate.acquire(), self.wait))
        except TimeoutError:
            SQLITE_WRITE_GATE_BYPASSED.inc()
            log.warning("sqlite_write_gate_bypassed", waited_s=self.wait, urgent=urgent)
            return
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
