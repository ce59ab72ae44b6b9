"""Shared fixtures: a real database (SQLite always, PostgreSQL when TEST_DATABASE_URL names it),
the fake Telegram server, and a running bot wired to both.

Tests never read DATABASE_URL or .env: settings are built explicitly with ``_env_file=None``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.harness import BotHarness, TestDatabase

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail (not skip) when TEST_DATABASE_URL is set but PostgreSQL does not answer."""
    if not POSTGRES_URL:
        return

    async def ping() -> None:
        engine = create_async_engine(POSTGRES_URL)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(ping(), timeout=10))
    except Exception as exc:
        pytest.exit(
            f"TEST_DATABASE_URL is set but PostgreSQL does not answer: {exc!r}", returncode=3
        )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database engine under test."""
    return str(request.param)


@asynccontextmanager
async def _fresh_schema() -> AsyncIterator[TestDatabase]:
    """A new PostgreSQL schema, dropped afterwards. Administered without a pooled connection: a
    test may kill every connection this process holds, and the schema must still be dropped."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(POSTGRES_URL, poolclass=NullPool)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield TestDatabase(url=POSTGRES_URL, schema=schema)
    finally:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield TestDatabase(url=f"sqlite+aiosqlite:///{tmp_path / 'test.db'}", schema=None)
        return
    async with _fresh_schema() as fresh:
        yield fresh


@pytest.fixture
async def postgres_database() -> AsyncIterator[TestDatabase]:
    """A fresh PostgreSQL schema for tests that only make sense there (several processes on one
    database, killed connections); skipped without TEST_DATABASE_URL."""
    if not POSTGRES_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    async with _fresh_schema() as fresh:
        yield fresh


@pytest.fixture
async def harness(database: TestDatabase, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The real bot (python-telegram-bot, polling) against the fake server and the database."""
    async with BotHarness(database, tmp_path) as running:
        yield running


@pytest.fixture
def protocol_path() -> Path:
    """The real protocol file."""
    from bot.protocols import default_schedules_dir

    return default_schedules_dir() / "knee-cryoneurolysis.yaml"
