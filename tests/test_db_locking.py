"""SQLite: reads begin deferred and leave the write lock free; write
transactions take it at BEGIN (so two writers never deadlock)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.db import Database
from bot.models import Member


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
