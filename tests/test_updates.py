"""Update ids: seen, then finished; a finished redelivery is dropped, an
unfinished one handled again; old ids are forgotten after a week."""

from __future__ import annotations

from bot.clock import FakeClock
from bot.db import Database
from bot.updates import Seen, SeenUpdates


async def test_seen_finished_and_pruned(db: Database, clock: FakeClock) -> None:
    seen = SeenUpdates(db, clock)
    assert await seen.begin(101) == Seen.new
    assert await seen.begin(101) == Seen.unfinished  # its handling never finished
    await seen.finish(101)
    assert await seen.begin(101) == Seen.finished
    clock.advance(days=6)
    assert await seen.begin(102) == Seen.new
    await seen.finish(102)
    clock.advance(days=2)
    await seen.prune()
    assert await seen.begin(101) == Seen.new  # forgotten: more than a week old
    assert await seen.begin(102) == Seen.finished  # two days old: kept
