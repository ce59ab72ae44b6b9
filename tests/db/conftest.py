"""A migrated, empty database for the query tests (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.session import create_engine, make_sessionmaker, upgrade_database
from tests.harness import TestDatabase


@pytest.fixture
async def sessions(database: TestDatabase) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database, migrated to the head revision like the bot's."""
    engine = create_engine(database.url, schema=database.schema)
    try:
        await upgrade_database(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
