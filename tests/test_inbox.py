"""The inbox (bot/inbox.py): a batch is stored in one insert, a redelivery
is counted, an update is marked done in its command's own commit (or by one
statement after handlers that ran none), a failed one is handled again only
when redelivered, one the process died with is handled at start (up to a
limit), and old rows are pruned."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from bot.clock import FakeClock
from bot.db import Database
from bot.inbox import MAX_RESTARTS, Inbox, command, current


def update(update_id: int, text: str = "halo") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": 5, "type": "private"},
            "from": {"id": 5, "is_bot": False, "first_name": "X"},
            "text": text,
        },
    }


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement the engine sends meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql.strip().split("\n")[0])

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


def touching_inbox(sql: list[str]) -> list[str]:
    return [s for s in sql if "inboxupdate" in s.lower()]


async def test_a_batch_is_one_insert_and_a_redelivery_is_counted(
    db: Database, clock: FakeClock
) -> None:
    inbox = Inbox(db, clock)
    with statements(db) as sql:
        assert await inbox.store([update(1), update(2), update(3)]) == [1, 2, 3]
    assert touching_inbox(sql) == [s for s in sql if s.upper().startswith("INSERT")]
    assert len(touching_inbox(sql)) == 1
    assert inbox.in_flight == 3

    # 2 is being handled, 3 is done: their redeliveries change nothing.
    async with inbox.handling(3):
        pass
    assert await inbox.store([update(2), update(3), update(4)]) == [4]
    for update_id, duplicates in ((2, 1), (3, 1), (4, 0)):
        row = await inbox.get(update_id)
        assert row is not None and row.duplicates == duplicates
    row = await inbox.get(3)
    assert row is not None and row.done_at is not None and row.payload is None


async def test_an_update_is_marked_done_in_its_commands_commit(
    db: Database, clock: FakeClock
) -> None:
    inbox = Inbox(db, clock)
    await inbox.store([update(7)])
    with statements(db) as sql:
        async with inbox.handling(7) as handling:
            async with command(db, clock):
                pass
            assert handling.done  # committed with the command
            row = await inbox.get(7)
            assert row is not None and row.done_at is not None
            async with command(db, clock):  # a second command adds nothing
                pass
    assert len(touching_inbox(sql)) == 2  # the mark, and the read above
    assert inbox.in_flight == 0


async def test_a_command_that_fails_takes_the_mark_with_it(db: Database, clock: FakeClock) -> None:
    inbox = Inbox(db, clock)
    await inbox.store([update(8)])
    async with inbox.handling(8) as handling:
        try:
            async with command(db, clock):
                raise ValueError("refused")
        except ValueError:
            pass
        assert not handling.done
        row = await inbox.get(8)
        assert row is not None and row.done_at is None
    # The handler caught it and went on: done after the handlers, one statement.
    row = await inbox.get(8)
    assert row is not None and row.done_at is not None and row.failed_at is None


async def test_an_update_without_a_command_costs_one_statement(
    db: Database, clock: FakeClock
) -> None:
    inbox = Inbox(db, clock)
    await inbox.store([update(9)])
    with statements(db) as sql:
        async with inbox.handling(9):
            pass
    assert len(touching_inbox(sql)) == 1
    row = await inbox.get(9)
    assert row is not None and row.done_at is not None


async def test_a_failed_update_is_handled_again_only_when_redelivered(
    db: Database, clock: FakeClock
) -> None:
    inbox = Inbox(db, clock)
    await inbox.store([update(11)])
    try:
        async with inbox.handling(11):
            raise RuntimeError("a handler fell over")
    except RuntimeError:
        pass
    row = await inbox.get(11)
    assert row is not None and row.failed_at is not None and row.done_at is None
    assert await inbox.unfinished() == []  # the person was told: not at start
    assert await inbox.store([update(11)]) == [11]  # but a redelivery is handled
    async with inbox.handling(11):
        pass
    row = await inbox.get(11)
    assert row is not None and row.done_at is not None and row.duplicates == 1


async def test_updates_left_unfinished_are_handled_at_start_then_given_up(
    db: Database, clock: FakeClock
) -> None:
    first = Inbox(db, clock)
    await first.store([update(21), update(22, "kedua")])
    async with first.handling(21):
        pass
    # The process died with 22 stored (perhaps half handled).
    for restart in range(1, MAX_RESTARTS + 1):
        again = Inbox(db, clock)  # a new process
        payloads = await again.unfinished()
        assert [p["update_id"] for p in payloads] == [22]
        assert payloads[0]["message"]["text"] == "kedua"
        row = await again.get(22)
        assert row is not None and row.restarts == restart
        # ...and dies again before finishing it.
    last = Inbox(db, clock)
    assert await last.unfinished() == []  # given up: it keeps killing the bot
    row = await last.get(22)
    assert row is not None and row.failed_at is not None


async def test_a_task_started_by_a_handler_does_not_mark_its_update(
    db: Database, clock: FakeClock
) -> None:
    """A timer or job started while an update is handled inherits the
    context variable; its commands must not count as the update's."""
    inbox = Inbox(db, clock)
    await inbox.store([update(31)])
    async with inbox.handling(31) as handling:
        assert current() is handling

        async def elsewhere() -> bool:
            async with command(db, clock):
                pass
            return current() is None

        assert await asyncio.create_task(elsewhere())
        assert not handling.done
        row = await inbox.get(31)
        assert row is not None and row.done_at is None
    assert current() is None


async def test_rows_are_pruned_after_two_days(db: Database, clock: FakeClock) -> None:
    inbox = Inbox(db, clock)
    await inbox.store([update(41)])
    async with inbox.handling(41):
        pass
    clock.advance(days=1)
    await inbox.store([update(42)])
    clock.advance(days=1, minutes=1)
    await inbox.prune()
    assert await inbox.get(41) is None
    assert await inbox.get(42) is not None
