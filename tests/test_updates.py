"""Update ids: a redelivery is recognised; old ids are forgotten after a week."""

from __future__ import annotations

from bot.clock import FakeClock
from bot.db import Database
from bot.updates import SeenUpdates


async def test_seen_once_and_pruned(db: Database, clock: FakeClock) -> None:
    seen = SeenUpdates(db, clock)
    assert await seen.first_time(101)
    assert not await seen.first_time(101)
    clock.advance(days=6)
    assert await seen.first_time(102)
    clock.advance(days=2)
    await seen.prune()
    assert await seen.first_time(101)  # forgotten: more than a week old
    assert not await seen.first_time(102)  # two days old: kept
