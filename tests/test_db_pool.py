"""PostgreSQL connections waiting in the pool (bot/db.py, ping_when_idle):
one that waited is checked before use and replaced when the server no
longer has it; one given back a moment ago is used at once, without a
round trip (SQLAlchemy's pool_pre_ping paid one on every session)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.db import Database, ping_when_idle
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL not set (PostgreSQL)")


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_async_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        yield made
    finally:
        await made.dispose()


async def backend(engine: AsyncEngine) -> int:
    """The server process behind the pool's one connection."""
    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert isinstance(pid, int)
    return pid


async def end_on_the_server(pg_url: str, pid: int) -> None:
    """What a server restart does to a pooled connection."""
    other = create_async_engine(pg_url)
    try:
        async with other.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()


async def test_a_connection_that_waited_is_replaced_when_the_server_ended_it(
    engine: AsyncEngine, pg_url: str
) -> None:
    ping_when_idle(engine, idle=0.0)  # every reuse counts as after a wait
    first = await backend(engine)
    await end_on_the_server(pg_url, first)
    assert await backend(engine) != first  # no error: replaced before use


async def test_a_connection_used_a_moment_ago_is_not_checked(
    engine: AsyncEngine, pg_url: str
) -> None:
    """The trade: a connection the server ended within the idle time fails
    its statement once; the pool is then renewed for the next one."""
    ping_when_idle(engine, idle=3600.0)
    first = await backend(engine)
    await end_on_the_server(pg_url, first)
    with pytest.raises(DBAPIError) as failed:
        await backend(engine)
    assert failed.value.connection_invalidated
    assert await backend(engine) != first


async def test_the_bot_pings_no_connection_it_keeps_using(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_url)
    pings: list[object] = []
    ping = db.engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counted)
    try:
        for _ in range(10):
            async with db.session() as s:
                await s.exec(text("SELECT 1"))  # type: ignore[call-overload]
        assert pings == []
    finally:
        await db.dispose()
