"""Alembic: the migrations build the same schema as the models, and the
bot refuses a database that is behind."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from bot import models  # noqa: F401
from bot.db import Database
from bot.migrate import DatabaseBehind, require_current, upgrade


@pytest.fixture
async def empty_db(db: Database) -> Database:
    """The shared fixture's database, emptied (it creates tables directly)."""
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    return db


async def test_upgrade_matches_models(empty_db: Database) -> None:
    with pytest.raises(DatabaseBehind) as info:
        await require_current(empty_db)
    assert "sopbot db upgrade" in str(info.value)
    await upgrade(empty_db)
    await require_current(empty_db)

    def diff(conn):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)

    async with empty_db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    await upgrade(empty_db)  # a second upgrade is a no-op
