"""SQLite's write lock. Reads begin deferred and leave it free; write
transactions take it at BEGIN, so two writers never deadlock.

SQLite's calls run on the event loop's thread (bot/sqlite_inline.py), so
none of them may wait inside SQLite: a writer waits for the write lock
asynchronously, whether the holder is a writer of the same engine or of
another process, and the loop goes on serving everyone else meanwhile. The
lock is given back however a transaction ends."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

from bot import sqlite_inline
from bot.db import Database
from bot.models import Member, Unit


def other_writer_gets_the_lock(path: Path) -> bool:
    """Another process's writer, not willing to wait."""
    conn = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    else:
        conn.execute("ROLLBACK")
        return True
    finally:
        conn.close()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}")
    await database.create_all()
    yield database
    await database.dispose()


async def test_a_read_session_does_not_take_the_write_lock(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with sqlite_db.session() as s:
        await s.exec(select(Member))
        free = await asyncio.to_thread(other_writer_gets_the_lock, tmp_path / "lock.db")
    assert free


async def test_a_transaction_takes_the_write_lock_at_begin(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with sqlite_db.transaction() as s:
        await s.exec(select(Member))  # only a read so far, yet the lock is held
        free = await asyncio.to_thread(other_writer_gets_the_lock, tmp_path / "lock.db")
    assert not free
    assert await asyncio.to_thread(other_writer_gets_the_lock, tmp_path / "lock.db")


async def add_unit(
    db: Database,
    name: str,
    hold: asyncio.Event | None = None,
    holding: asyncio.Event | None = None,
) -> None:
    """A write; with `hold`, it keeps the write lock (telling `holding`)
    until `hold` is set."""
    async with db.transaction() as s:
        s.add(Unit(name=name))
        await s.flush()
        if holding is not None:
            holding.set()
        if hold is not None:
            await hold.wait()


async def names(db: Database) -> list[str]:
    async with db.session() as s:
        return sorted(u.name for u in await s.exec(select(Unit)))


async def loop_turns(until: asyncio.Task[object]) -> int:
    """How often the loop ran something else while `until` was pending."""
    turns = 0
    while not until.done():
        await asyncio.sleep(0)
        turns += 1
        if turns > 200:
            break
    return turns


async def test_two_writers_of_one_engine_take_turns_without_holding_the_loop(
    sqlite_db: Database,
) -> None:
    release, holding = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(add_unit(sqlite_db, "Bidang A", release, holding))
    await holding.wait()  # `first` holds the write lock, waiting on us
    second = asyncio.create_task(add_unit(sqlite_db, "Bidang B"))
    # The loop still serves: a read goes through while both writers wait.
    assert await names(sqlite_db) == []
    assert await loop_turns(second) > 100  # the second writer waits its turn
    assert not second.done()
    release.set()
    await asyncio.gather(first, second)
    assert await names(sqlite_db) == ["Bidang A", "Bidang B"]


def hold_lock(path: Path, holding: threading.Event, release: threading.Event) -> None:
    """Another process's writer: takes the lock and keeps it until told."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO unit (name, active) VALUES ('Dari luar', 1)")
        holding.set()
        release.wait(30)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_a_writer_waits_for_another_process_without_holding_the_loop(
    sqlite_db: Database, tmp_path: Path
) -> None:
    holding, release = threading.Event(), threading.Event()
    other = asyncio.create_task(
        asyncio.to_thread(hold_lock, tmp_path / "lock.db", holding, release)
    )
    await asyncio.to_thread(holding.wait, 10)
    mine = asyncio.create_task(add_unit(sqlite_db, "Bidang A"))
    assert await loop_turns(mine) > 100  # retried after pauses, the loop free
    assert not mine.done()
    assert await names(sqlite_db) == []  # reads never wait (WAL)
    release.set()
    await asyncio.gather(other, mine)
    assert await names(sqlite_db) == ["Bidang A", "Dari luar"]


async def test_a_writer_gives_up_after_the_busy_timeout(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_inline, "BUSY_TIMEOUT", 0.05)
    holding, release = threading.Event(), threading.Event()
    other = asyncio.create_task(
        asyncio.to_thread(hold_lock, tmp_path / "lock.db", holding, release)
    )
    await asyncio.to_thread(holding.wait, 10)
    try:
        with pytest.raises(OperationalError, match="locked"):
            await add_unit(sqlite_db, "Bidang A")
    finally:
        release.set()
        await other
    await add_unit(sqlite_db, "Bidang B")  # the engine's own gate was given back
    assert await names(sqlite_db) == ["Bidang B", "Dari luar"]


async def test_the_lock_is_given_back_however_a_transaction_ends(sqlite_db: Database) -> None:
    await add_unit(sqlite_db, "Bidang A")
    with pytest.raises(IntegrityError):  # the database refuses: rolled back
        async with sqlite_db.transaction() as s:
            await s.exec(text("INSERT INTO unit (id, name, active) VALUES (1, 'x', 1)"))
    with pytest.raises(RuntimeError):  # the caller fails: rolled back
        async with sqlite_db.transaction() as s:
            s.add(Unit(name="Bidang B"))
            await s.flush()
            raise RuntimeError("handler failed")
    holding = asyncio.Event()
    task = asyncio.create_task(add_unit(sqlite_db, "Bidang C", asyncio.Event(), holding))
    await holding.wait()
    task.cancel()  # cancelled while holding the lock
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5):
        await add_unit(sqlite_db, "Bidang D")
    assert await names(sqlite_db) == ["Bidang A", "Bidang D"]


async def test_sqlite_itself_never_waits_for_a_lock(sqlite_db: Database) -> None:
    """Its own busy timeout would wait on the event loop's thread, holding
    every other task, the lock's holder included."""
    async with sqlite_db.session() as s:
        assert (await s.exec(text("PRAGMA busy_timeout"))).one()[0] == 0
    async with sqlite_db.transaction() as s:
        assert (await s.exec(text("PRAGMA busy_timeout"))).one()[0] == 0


async def test_checkpoints_run_in_a_thread_not_at_a_commit(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint fsyncs, seconds on a busy disk: the engine's connections
    never run one at a commit (on the loop's thread), `Database.checkpoint`
    runs it in a thread of its own, and the bot does that every 30 s."""
    async with sqlite_db.session() as s:
        assert (await s.exec(text("PRAGMA wal_autocheckpoint"))).one()[0] == 0  # type: ignore[call-overload]
    for n in range(1200):  # past SQLite's automatic checkpoint (1,000 pages)
        async with sqlite_db.transaction() as s:
            s.add(Unit(name=f"Unit {n} " + "x" * 4000))
    wal = tmp_path / "lock.db-wal"
    assert wal.stat().st_size > 1000 * 4096  # nothing was copied at a commit
    threads: list[int] = []
    real = sqlite3.connect

    def watched(*args: object, **kwargs: object) -> sqlite3.Connection:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_inline.sqlite3, "connect", watched)
    busy, pages, copied = await sqlite_inline.checkpoint(sqlite_db.url)
    assert busy == 0 and pages > 1000 and copied == pages
    assert threads and threading.get_ident() not in threads
    await sqlite_db.checkpoint()  # the bot's way, the same checkpoint
    # A database in memory has no WAL and no file to open in a thread.
    assert await sqlite_inline.checkpoint("sqlite+aiosqlite://") == (0, 0, 0)


async def test_the_bot_checkpoints_every_30_seconds(tmp_path: Path) -> None:
    from tests.fakes.world import running_bot

    async with running_bot(tmp_path) as world:
        assert world.app.job_queue is not None
        [job] = world.app.job_queue.get_jobs_by_name("sqlite-checkpoint")
        assert job.job.trigger.interval.total_seconds() == 30
