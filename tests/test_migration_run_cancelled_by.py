"""Migration 0015: who stopped a run moves from the event log into a column
(run.cancelled_by). A database from before it gets the column filled from
each stopped run's run_cancelled event; a run still open keeps none."""

from __future__ import annotations

from pathlib import Path

from bot.clock import FakeClock
from bot.db import Database
from bot.migrate import upgrade
from bot.models import Run
from tests.support import build_office
from tests.test_migration_outbox_keys import downgrade, migrated


async def test_who_stopped_a_run_is_filled_from_its_event(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await migrated(db)
    office = await build_office(db, clock, tmp_path)
    e, p = office.engine, office.id
    stopped = await e.runs.start(p("kepala"), "TW III 2026")
    still = await e.runs.start(p("kepala"), "TW IV 2026")
    await e.runs.cancel(p("kepala"), stopped.id or 0, "Salah periode")
    async with db.session() as s:
        run = await s.get(Run, stopped.id)
        assert run is not None and run.cancelled_by == p("kepala")

    await downgrade(db, "0014_sweep_indexes")  # as before: the event log only
    await upgrade(db)
    async with db.session() as s:
        run = await s.get(Run, stopped.id)
        other = await s.get(Run, still.id)
        assert run is not None and run.cancelled_by == p("kepala")
        assert other is not None and other.cancelled_by is None
