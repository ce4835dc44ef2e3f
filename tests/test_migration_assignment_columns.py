"""Migration 0008: who delegated an assignment and when, and who closed a
unit, when and why, move from the event log into columns. A database from
before it gets the columns filled from its events."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from bot.clock import FakeClock
from bot.db import Database
from bot.migrate import upgrade
from bot.models import Assignment
from tests.support import build_office, to_collection
from tests.test_migration_outbox_keys import downgrade, migrated


async def test_columns_are_filled_from_the_events(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await migrated(db)
    office = await build_office(db, clock, tmp_path)
    e, p = office.engine, office.id
    await to_collection(office)
    [collect] = [t for t in await e.queries.tasks(p("unit4")) if t.number == 6]
    closure = await e.collection.close(
        p("perencana"), collect.run_step_id, "Sedang dinas luar", unit_id=collect.unit_id
    )
    assert closure.units == ["Bidang Ketahanan Ekonomi, Sosial, Budaya dan Agama"]
    [unit1_task] = [t for t in await e.queries.tasks(p("unit1")) if t.number == 6]
    office.clock.advance(minutes=5)
    await e.delegation.reassign(p("admin"), unit1_task.assignment_id or 0, p("unit1"))
    async with db.session() as s:
        closed = await s.get(Assignment, collect.assignment_id)
        handed = await s.get(Assignment, unit1_task.assignment_id)
        assert closed is not None and handed is not None
        expected = {
            "closed": (closed.closed_by, closed.closed_at, closed.close_reason, closed.note),
            "handed": (handed.delegated_by, handed.delegated_at),
        }
    assert expected["closed"][0] == p("perencana")
    assert expected["closed"][2] == "Sedang dinas luar"
    assert expected["closed"][3] is None  # the note is the return note only
    assert expected["handed"] == (p("admin"), office.clock.now())

    # As before the upgrade: the reason in the note, no columns.
    await downgrade(db, "0007_run_request_key")
    async with db.engine.begin() as conn:
        note = (
            await conn.execute(
                text("SELECT note FROM assignment WHERE id = :a"), {"a": collect.assignment_id}
            )
        ).scalar_one()
    assert note == "Sedang dinas luar"
    await upgrade(db)
    async with db.session() as s:
        closed = await s.get(Assignment, collect.assignment_id)
        handed = await s.get(Assignment, unit1_task.assignment_id)
        assert closed is not None and handed is not None
        assert (closed.closed_by, closed.closed_at, closed.close_reason, closed.note) == expected[
            "closed"
        ]
        assert (handed.delegated_by, handed.delegated_at) == expected["handed"]
