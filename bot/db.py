"""Async database access: engine, sessions, and the SQLite settings that
keep concurrent writers from failing with "database is locked"."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Executable
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.sqlite_inline import checkpoint, inline_connector

log = logging.getLogger(__name__)


def table(model: type[SQLModel]) -> Table:
    """A model's table, for the writes made on every update: an INSERT or
    UPDATE on the table skips the ORM's bulk machinery (which looks for
    objects of the session to update alike), and cost half the CPU: one
    row's UPDATE in its transaction 0.76 ms against 1.45 ms through the
    model, on SQLite."""
    found = model.__table__  # type: ignore[attr-defined]
    assert isinstance(found, Table)
    return found


async def plain_rows(
    s: AsyncSession, statement: Executable, params: dict[str, Any] | None = None
) -> Sequence[Row[Any]]:
    """A read of many values nobody changes here, as plain rows on the
    session's connection: no ORM execution state, no object per row (who
    sent an update, /status's steps and staff). An ORM query cost 0.1-0.19
    ms more per statement than the same one read this way (SQLite,
    measured); what a command changes is still read as objects."""
    connection = await s.connection()
    return (await connection.execute(statement, params or {})).all()


def dialect_of(s: AsyncSession) -> str:
    """The session's database ("sqlite", "postgresql"), for the statements
    built once per dialect (an upsert is written the dialect's way)."""
    return s.bind.dialect.name if s.bind is not None else "sqlite"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite stores no offset; without this a deadline read back would be naive
    and compare wrongly with the office clock.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# A pooled PostgreSQL connection unused this long is checked before use.
PING_AFTER_IDLE = 5.0
_IDLE_SINCE = "sopbot_idle_since"  # in each pooled connection's record

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
# Execution option that marks the engine behind Database.transaction().
WRITE_OPTION = "sopbot_write"

# Told, after a transaction committed, what its session noted in `info`.
CommitListener = Callable[[dict[Any, Any]], None]


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class BadDatabaseUrl(ValueError):
    """DATABASE_URL names a database or driver the bot cannot use."""


def check_url(url: str) -> None:
    """Refuse a URL the async engine cannot use, naming the one to write
    (`postgresql://...` is the usual slip: it means a sync driver)."""
    try:
        parsed = make_url(url)
    except Exception:
        raise BadDatabaseUrl(f"DATABASE_URL tidak dapat dibaca: {url!r}") from None
    wanted = ASYNC_DRIVERS.get(parsed.get_backend_name())
    if wanted is None:
        raise BadDatabaseUrl(
            f"DATABASE_URL: database {parsed.get_backend_name()!r} tidak didukung "
            "(gunakan sqlite+aiosqlite:///... atau postgresql+asyncpg://...)"
        )
    if parsed.drivername != wanted:
        raise BadDatabaseUrl(
            f"DATABASE_URL harus diawali {wanted}:// (bukan {parsed.drivername}://)"
        )


def ping_when_idle(engine: AsyncEngine, idle: float = PING_AFTER_IDLE) -> None:
    """Before a pooled connection is used again after `idle` seconds unused,
    check that the server still has it (a restart, a dropped network, an
    idle timeout end a connection while it waits in the pool); a dead one
    is replaced, with every connection older than it, before anyone uses
    it. Why not SQLAlchemy's pool_pre_ping: it pings on every checkout, a
    round trip per session, several per update: on PostgreSQL a session
    with one statement cost 0.74 ms of CPU with it, 0.45 without. A
    connection given back less than `idle` seconds ago is used unchecked:
    if the server went away in those seconds, the statement fails, the
    update is answered with an error and kept as failed (bot/inbox.py), and
    the pool is renewed for the next one."""
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < idle:
            return  # new, or used a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # The pool reconnects, and renews every older connection.
                raise InvalidatePoolError() from exc
            raise


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine; for SQLite with WAL, foreign keys, write
    transactions (WRITE_OPTION) that take the write lock at BEGIN, and calls
    made on the event loop's thread that wait for that lock without blocking
    it (bot/sqlite_inline.py); for PostgreSQL, connections checked after
    they waited in the pool (`ping_when_idle`)."""
    if not is_sqlite(url):
        server = create_async_engine(url, echo=echo)
        ping_when_idle(server)
        return server
    # Each call runs on the event loop's thread (bot/sqlite_inline.py), which
    # also waits for the write lock without holding the loop.
    engine = create_async_engine(url, echo=echo, async_creator=inline_connector(url))

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Only a write transaction (Database.transaction) takes the write lock
        # at BEGIN, so two writers never deadlock upgrading a read lock; reads
        # (the outbox poll every 2 s) begin deferred and block nobody.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        sql = "BEGIN IMMEDIATE" if write else "BEGIN"
        # Straight to the driver: through exec_driver_sql a BEGIN cost as
        # much CPU as a query (an execution context, a result), 2-3% of an
        # update's. Its errors are raised as exec_driver_sql raised them
        # (a busy database is SQLAlchemy's OperationalError).
        dbapi = conn.dialect.loaded_dbapi
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql)
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, (), exc, dbapi.Error) from exc
        finally:
            cursor.close()

    return engine


class Database:
    """Owns the engine; hands out sessions and one-transaction scopes."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        check_url(url)
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        # Same pool; its connections begin with BEGIN IMMEDIATE on SQLite.
        writer = self.engine.execution_options(**{WRITE_OPTION: True})
        self._writes = async_sessionmaker(writer, class_=AsyncSession, expire_on_commit=False)
        self._after_commit: list[CommitListener] = []

    def after_commit(self, listener: CommitListener) -> None:
        """Call `listener` with the session's `info` after each transaction
        that committed (never after one rolled back): what a writer noted
        there is then true for every reader, e.g. the outbox's "a message is
        owed", which wakes the sender only when there is something to send."""
        self._after_commit.append(listener)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; nothing is committed."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any error."""
        async with self._writes() as session:
            async with session.begin():
                yield session
            for listener in self._after_commit:
                try:
                    listener(session.info)
                except Exception:  # committed: the caller must not think otherwise
                    log.exception("an after-commit listener failed")

    async def create_all(self) -> None:
        """Create the tables directly (tests); production uses Alembic."""
        from sqlmodel import SQLModel

        from bot import models  # noqa: F401  (registers the tables)

        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)

    async def checkpoint(self) -> None:
        """SQLite: copy the WAL into the database file, off the event loop's
        thread (bot/sqlite_inline.py says why); PostgreSQL: nothing."""
        if is_sqlite(self.url):
            await checkpoint(self.url)

    async def dispose(self) -> None:
        await self.engine.dispose()
