"""The hash-chained event log finds an edited, deleted or reordered row."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import select

from bot.audit import append_event, verify_chain
from bot.cli import main
from bot.clock import FakeClock
from bot.db import Database
from bot.models import Event


async def chain_of_five(db: Database, clock: FakeClock) -> None:
    for i in range(5):
        async with db.transaction() as s:
            await append_event(
                s,
                "uji",
                at=clock.advance(minutes=1),
                actor_id=i,
                details={"i": i, "teks": "catatan <b>&"},
            )


async def verify(db: Database):
    async with db.session() as s:
        return await verify_chain(s)


async def test_intact_chain_verifies(db: Database, clock: FakeClock) -> None:
    await chain_of_five(db, clock)
    result = await verify(db)
    assert result.ok and result.checked == 5


async def test_edited_row_is_found(db: Database, clock: FakeClock) -> None:
    await chain_of_five(db, clock)
    async with db.transaction() as s:
        ev = (await s.exec(select(Event).where(Event.seq == 3))).one()
        ev.details = {"i": 99, "teks": "diubah"}
        s.add(ev)
    result = await verify(db)
    assert not result.ok and result.broken_seq == 3
    assert "diubah" in result.reason


async def test_deleted_row_is_found(db: Database, clock: FakeClock) -> None:
    await chain_of_five(db, clock)
    async with db.transaction() as s:
        await s.exec(text("DELETE FROM event WHERE seq = 2"))
    result = await verify(db)
    assert not result.ok and result.broken_seq == 2


async def test_deleted_last_row_is_found(db: Database, clock: FakeClock) -> None:
    await chain_of_five(db, clock)
    async with db.transaction() as s:
        await s.exec(text("DELETE FROM event WHERE seq = 5"))
    result = await verify(db)
    assert not result.ok and result.broken_seq == 5


async def test_reordered_rows_are_found(db: Database, clock: FakeClock) -> None:
    await chain_of_five(db, clock)
    async with db.transaction() as s:
        await s.exec(text("UPDATE event SET seq = 100 WHERE seq = 2"))
        await s.exec(text("UPDATE event SET seq = 2 WHERE seq = 3"))
        await s.exec(text("UPDATE event SET seq = 3 WHERE seq = 100"))
    result = await verify(db)
    assert not result.ok and result.broken_seq == 2


async def test_cli_verify(db: Database, clock: FakeClock, monkeypatch, capsys) -> None:
    await chain_of_five(db, clock)
    monkeypatch.setenv("DATABASE_URL", db.url)
    await db.dispose()
    import asyncio

    code = await asyncio.to_thread(main, ["audit", "verify"])
    assert code == 0
    assert "5 peristiwa diperiksa" in capsys.readouterr().out
