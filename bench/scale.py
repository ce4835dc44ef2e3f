"""The deadline sweep at scale (for bench/__main__.py): a run brought to
its collection step through the engine (tests.support.to_collection: five
units each owe a file), then copied in bulk with INSERT ... SELECT until
the database holds the asked number of open assignments, with every step
of every run (so `runstep` is fifteen times the open steps, as in life).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import col, select, update

from bot.clock import FakeClock
from bot.db import Database
from bot.deadlines import Deadlines, due_steps
from bot.migrate import upgrade
from bot.models import RunStep, StepState
from bot.office import OfficeConfig
from tests.support import build_office, to_collection

Figure = tuple[float, float, float]
MONDAY = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 WIB, a working morning
DUE = 25  # steps made due for the "work proportional to what is due" figure
COLUMNS = {
    "run": (
        "sop_key, sop_version, title, state, started_at, started_by, ended_at, "
        "reminders_paused, cancel_reason"
    ),
    "runstep": (
        "step_key, number, iteration, state, opened_at, due_at, done_at, done_by, outcome, "
        "note, check_at"
    ),
    "assignment": (
        "role, unit_id, member_id, state, updated_at, note, delegated_by, delegated_at, "
        "closed_by, closed_at, close_reason"
    ),
}


@dataclass
class ScaleFigures:
    open_assignments: int
    due_steps: int
    sweep_idle: Figure
    sweep_due: Figure
    due_query: Figure
    next_moment: Figure


def spread(values: list[float]) -> Figure:
    return min(values), statistics.median(values), max(values)


async def copy_runs(db: Database, copies: int) -> None:
    """Every run there is, `copies` times more, with its steps and assignments."""
    numbers = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {copies}) "
    async with db.engine.begin() as conn:
        top = {}
        for table in ("run", "runstep", "assignment"):
            top[table] = (await conn.execute(text(f"SELECT max(id) FROM {table}"))).scalar_one()
        r, s, a = top["run"], top["runstep"], top["assignment"]
        await conn.execute(
            text(
                numbers + f"INSERT INTO run (id, {COLUMNS['run']}) "
                f"SELECT run.id + n.i * {r}, {COLUMNS['run']} FROM run, n WHERE run.id <= {r}"
            )
        )
        await conn.execute(
            text(
                numbers + f"INSERT INTO runstep (id, run_id, {COLUMNS['runstep']}) "
                f"SELECT runstep.id + n.i * {s}, runstep.run_id + n.i * {r}, {COLUMNS['runstep']} "
                f"FROM runstep, n WHERE runstep.id <= {s}"
            )
        )
        await conn.execute(
            text(
                numbers + f"INSERT INTO assignment (id, run_step_id, {COLUMNS['assignment']}) "
                f"SELECT assignment.id + n.i * {a}, assignment.run_step_id + n.i * {s}, "
                f"{COLUMNS['assignment']} FROM assignment, n WHERE assignment.id <= {a}"
            )
        )
        if conn.dialect.name == "postgresql":
            for table in ("run", "runstep", "assignment"):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
            await conn.execute(text("ANALYZE"))


async def timed(work: Awaitable[object]) -> float:
    t0 = time.perf_counter()
    await work
    return time.perf_counter() - t0


async def wipe(url: str | None) -> None:
    """An empty PostgreSQL scratch database again (SQLite: a new file each time)."""
    if not url:
        return
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await db.dispose()


async def measure_scale(
    tmp: Path, url: str | None, open_assignments: int, repeats: int
) -> ScaleFigures:
    await wipe(url)
    tmp.mkdir(parents=True)  # noqa: ASYNC240 (before anything runs)
    db = Database(url or f"sqlite+aiosqlite:///{tmp / 'scale.db'}")
    await upgrade(db)
    clock = FakeClock(MONDAY)
    office = await build_office(db, clock, tmp / "files")
    await to_collection(office)  # run 1, at step 6: five open unit assignments
    await copy_runs(db, open_assignments // 5 - 1)
    deadlines = Deadlines(office.engine, OfficeConfig())
    clock.advance(minutes=10)  # working hours, past the digest's window; nothing due
    idle = [await timed(deadlines.sweep()) for _ in range(repeats)]
    queries = []
    for _ in range(repeats):
        async with db.session() as s:
            queries.append(await timed(s.exec(due_steps(clock.now()))))
    moments = [await timed(deadlines.next_moment()) for _ in range(repeats)]
    due = []
    async with db.session() as s:
        open_ids = (
            await s.exec(
                select(RunStep.id)
                .where(RunStep.state == StepState.open)
                .order_by(col(RunStep.id))
                .limit(DUE * repeats)
            )
        ).all()
    for rep in range(repeats):
        ids = open_ids[rep * DUE : (rep + 1) * DUE]
        now = clock.now()
        async with db.transaction() as s:
            await s.exec(
                update(RunStep)
                .where(col(RunStep.id).in_(ids))
                .values(due_at=now - timedelta(hours=2), check_at=now - timedelta(minutes=1))
            )
        due.append(await timed(deadlines.sweep()))
    await db.dispose()
    return ScaleFigures(
        open_assignments, DUE, spread(idle), spread(due), spread(queries), spread(moments)
    )
