"""SQLite for the async engine without a thread hop per call.

Why: aiosqlite runs every call (cursor, execute, fetch, close, commit) in a
thread of its own and hands the result back through the event loop. A read
of one row costs about nine such hops, and the benchmark measured them at
about half of SQLAlchemy's time per update (issue 10), for calls that take
SQLite itself a few microseconds on a local file. This connection has the
shape SQLAlchemy's aiosqlite dialect expects (it is given as the engine's
`async_creator`), and runs each call at once on the event loop's thread.

What that asks in return, and how it is met:

- A call must never wait inside SQLite, or the whole bot waits with it.
  So SQLite's own busy timeout is 0, and waiting for the write lock is done
  here, asynchronously: the writers of one engine queue on an asyncio lock
  (`WriteGate`) taken at `BEGIN IMMEDIATE` and given back when the
  transaction ends, and a writer of another process (the shell, a second
  engine) is waited for by retrying the statement after a pause, up to the
  same 30 s the busy timeout gave. Only a statement that starts a
  transaction, or runs outside one, is retried: inside one, SQLite reports
  "busy" only for what waiting cannot mend.
- Reads never wait (WAL). A long statement holds the event loop while it
  runs; the bot's statements are indexed point reads and small writes. A
  call slower than SLOW_CALL is logged with its statement.
- A checkpoint (copying the WAL into the database file) fsyncs, which on a
  busy disk can take seconds. SQLite runs one at a commit once the WAL
  passes 1,000 pages, which here would be on the loop's thread: these
  connections never do (`wal_autocheckpoint=0`), and `checkpoint` runs one
  on a connection of its own in a thread (the bot every 30 s, jobs/).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self, TypeVar

from sqlalchemy.engine import make_url

BUSY_TIMEOUT = 30.0  # seconds a statement waits for another writer, as busy_timeout did
FIRST_PAUSE = 0.002  # then doubled up to LONGEST_PAUSE
LONGEST_PAUSE = 0.05
_TAKES_WRITE_LOCK = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
MEMORY = ":memory:"
SLOW_CALL = 0.5  # seconds: a call this slow held every task of the bot; it is logged

log = logging.getLogger(__name__)

T = TypeVar("T")


class WriteGate:
    """One writer at a time among the connections of one engine, in the
    order they asked (an asyncio lock, so a waiting writer lets the holder
    run). A writer waits at most BUSY_TIMEOUT, then fails as SQLite would."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def enter(self) -> None:
        try:
            async with asyncio.timeout(BUSY_TIMEOUT):
                await self._lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None

    def leave(self) -> None:
        self._lock.release()


def _busy(exc: sqlite3.OperationalError) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


class InlineCursor:
    """A sqlite3 cursor with aiosqlite's awaitable methods."""

    def __init__(self, connection: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = connection
        self._cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Self:
        await self._owner.run(sql, self._cursor.execute, sql, parameters or ())
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Self:
        await self._owner.run(sql, self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """A sqlite3 connection with the awaitable interface of
    aiosqlite.Connection that SQLAlchemy's dialect uses."""

    def __init__(self, connection: sqlite3.Connection, gate: WriteGate) -> None:
        # SQLAlchemy's adapter reads `_connection` (is it still open?), as
        # it does on aiosqlite's connection.
        self._connection: sqlite3.Connection | None = connection
        self._gate = gate
        self._holds_gate = False

    @property
    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("Connection closed")
        return self._connection

    async def run(self, sql: str, call: Callable[..., T], *args: Any) -> T:
        """Run one statement: a write transaction first waits its turn among
        this engine's writers; a statement refused because another process
        writes is tried again after a pause, outside a transaction only."""
        conn = self._open
        if not self._holds_gate and sql.lstrip()[:15].upper() in _TAKES_WRITE_LOCK:
            await self._gate.enter()
            self._holds_gate = True
        deadline = time.monotonic() + BUSY_TIMEOUT
        pause = FIRST_PAUSE
        try:
            while True:
                starting = not conn.in_transaction
                try:
                    return _timed(sql, call, *args)
                except sqlite3.OperationalError as exc:
                    if not (starting and _busy(exc)) or time.monotonic() + pause > deadline:
                        raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)
        finally:
            self._settle()

    def _settle(self) -> None:
        """Give the gate back once the transaction that took it has ended
        (committed, rolled back, or undone by an error)."""
        if self._holds_gate and (self._connection is None or not self._connection.in_transaction):
            self._holds_gate = False
            self._gate.leave()

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._open.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        cursor = self.cursor()
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        try:
            _timed("COMMIT", self._open.commit)
        finally:
            self._settle()

    async def rollback(self) -> None:
        try:
            self._open.rollback()
        finally:
            self._settle()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open.create_function(*args, **kwargs)

    @property
    def in_transaction(self) -> bool:
        return self._open.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._open.isolation_level

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate); an open transaction is
        rolled back by SQLite and the gate given back."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._settle()


def inline_connector(url: str) -> Callable[[], Any]:
    """The engine's `async_creator` for a sqlite+aiosqlite URL: connections
    of one engine share one WriteGate."""
    database = _database(url)
    gate = WriteGate()

    async def connect() -> InlineConnection:
        # timeout=0: SQLite never waits for a lock itself (see the module's
        # docstring); isolation_level=None: SQLAlchemy's BEGIN decides when a
        # transaction starts; check_same_thread=False: the pool may close a
        # connection from the thread that collects it.
        conn = sqlite3.connect(database, timeout=0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in a thread: checkpoint()
        return InlineConnection(conn, gate)

    return connect


def _database(url: str) -> str:
    """The file a sqlite URL names (MEMORY for none)."""
    return make_url(url).database or MEMORY


def _timed(sql: str, call: Callable[..., T], *args: Any) -> T:
    started = time.monotonic()
    try:
        return call(*args)
    finally:
        took = time.monotonic() - started
        if took > SLOW_CALL:
            log.warning("SQLite held the event loop %.1f s: %s", took, " ".join(sql.split())[:80])


async def checkpoint(url: str) -> tuple[int, int, int]:
    """Copy what the WAL holds into the database file, in a thread on a
    connection of its own (PASSIVE: it waits for nobody and nobody waits
    for it); SQLite's (busy, pages in the WAL, pages copied). A database
    in memory has no WAL: nothing to do."""
    database = _database(url)
    if database == MEMORY:
        return 0, 0, 0

    def run() -> tuple[int, int, int]:
        conn = sqlite3.connect(database, timeout=BUSY_TIMEOUT)
        try:
            busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(busy), int(pages), int(copied)
        finally:
            conn.close()

    return await asyncio.to_thread(run)
