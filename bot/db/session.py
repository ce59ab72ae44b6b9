"""Engines, sessions and migrations.

SQLite gets WAL, a busy timeout and foreign keys on every connection; PostgreSQL goes through
asyncpg. Migrations (Alembic) run at start, under a PostgreSQL advisory lock so several processes
starting together are safe.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from bot.db.write_gate import gate_writes

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Arbitrary constant key of the advisory lock taken while migrating.
MIGRATION_LOCK_KEY = 7_401_226_551


def create_engine(url: str, *, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    """An async engine for ``url`` with the pragmas/pool settings the bot relies on.

    ``schema`` (PostgreSQL only) sets the search path, so a deployment or a test run can live in
    its own schema of a shared database.
    """
    parsed = make_url(url)
    # hide_parameters: a database error's message (logged with its traceback) would otherwise
    # quote the statement's parameters, i.e. patients' answers.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["poolclass"] = NullPool
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        if schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        gate_writes(engine.sync_engine)  # one writer at a time, urgent first (write_gate.py)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no lazy loads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine: AsyncEngine) -> bool:
    """True on PostgreSQL, where row claims use FOR UPDATE SKIP LOCKED."""
    return engine.dialect.name == "postgresql"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our migrations, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade_database(engine: AsyncEngine) -> None:
    """Apply every pending migration; safe when several processes start at once.

    A database already at this code's head is left alone after one query: Alembic would read
    and run every migration file again to find that out (~0.1 s at each start)."""
    if await current_revision(engine) == head_revision():
        return
    async with engine.begin() as connection:
        if is_postgres(engine):
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


@functools.cache
def head_revision() -> str:
    """The head revision of this code's migrations (read once per process)."""
    return migration_revisions()[0]


def migration_revisions() -> tuple[str, list[str]]:
    """(the head revision of this code, every revision it knows), read from the migration files."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None, "the migrations folder has no head revision"
    return head, [rev.revision for rev in script.walk_revisions()]
