"""Shared fixtures: a database on SQLite (and PostgreSQL when
TEST_DATABASE_URL names one), a controlled clock, and an office with people."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from bot.calendar import WorkCalendar
from bot.clock import FakeClock
from bot.db import Database
from tests.support import Office, build_office

DATA = Path(__file__).parent / "data"

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
DB_PARAMS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test process's own, made from
    TEST_DATABASE_URL's, so two test runs on one server never collide."""
    import asyncpg

    url = make_url(PG_URL)
    name = f"{url.database}_sopbot_{os.getpid()}"
    server = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def statement(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def execute(sql: str) -> None:
        # First asked for inside a running test loop: run on a thread of its own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, statement(sql)).result()

    execute(f'DROP DATABASE IF EXISTS "{name}"')
    execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=DB_PARAMS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    else:
        database = Database(request.getfixturevalue("pg_url"))
        from bot import models  # noqa: F401

        async with database.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.drop_all)
    await database.create_all()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    # Monday 2 November 2026, 08:00 WIB: an ordinary working morning.
    return FakeClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))


@pytest.fixture
def calendar() -> WorkCalendar:
    return WorkCalendar()


@pytest.fixture
async def office(db: Database, clock: FakeClock, tmp_path: Path) -> Office:
    return await build_office(db, clock, tmp_path / "files")
