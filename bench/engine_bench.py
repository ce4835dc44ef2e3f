"""Benchmark: how fast the engine walks runs and takes uploads, and how
much memory it holds. Prints figures; asserts nothing.

    .venv/bin/python -m bench.engine_bench [--runs 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import FakeClock
from bot.db import Database
from bot.deadlines import Deadlines
from bot.office import OfficeConfig
from bot.views import IncomingFile
from tests.support import DATA, FORM, UNIT_FILES, XLSX, build_office


async def open_step_of(office, run_id: int):  # type: ignore[no-untyped-def]
    statuses = await office.engine.queries.run_status(run_id)
    return next(s for s in statuses[0].steps if s.state == "open")


async def to_collection(office, clock, title: str):  # type: ignore[no-untyped-def]
    """Steps 1-5 of a new run; returns the run, now at step 6."""
    e, p = office.engine, office.id
    run = await e.runs.start(p("kepala"), title)
    s = await open_step_of(office, run.id)
    await e.collection.upload(
        p("perencana"), s.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
    )
    await e.steps.complete(p("perencana"), s.run_step_id)
    await e.steps.complete(p("perencana"), (await open_step_of(office, run.id)).run_step_id)
    await e.steps.schedule_meeting(
        p("sekretaris"),
        (await open_step_of(office, run.id)).run_step_id,
        clock.now() + timedelta(minutes=5),
        "Aula",
        outside_hours_ok=True,  # the bench's clock runs on past office hours
    )
    clock.advance(minutes=5)  # step 5 can be finished once the meeting has started
    await e.steps.complete(p("kepala"), (await open_step_of(office, run.id)).run_step_id)
    return run


async def walk(office, clock) -> None:  # type: ignore[no-untyped-def]
    e, p = office.engine, office.id

    async def open_step(run_id: int):  # type: ignore[no-untyped-def]
        return await open_step_of(office, run_id)

    run = await to_collection(office, clock, "Bench")
    s6 = await open_step(run.id)
    receipts = []
    for i, name in enumerate(UNIT_FILES.values(), start=1):
        receipts.append(
            await e.collection.upload(
                p(f"unit{i}"), s6.run_step_id, IncomingFile((DATA / name).read_bytes(), name, XLSX)
            )
        )
    for r in receipts:
        await e.collection.review(p("perencana"), r.file.id, accept=True)
    for who in ("perencana", "sekretaris"):
        s = await open_step(run.id)
        if who == "perencana":
            await e.collection.upload(p(who), s.run_step_id, IncomingFile(b"PK", "d.xlsx", XLSX))
        await e.steps.complete(p(who), s.run_step_id)
    await e.steps.decide(p("kepala"), (await open_step(run.id)).run_step_id, "setuju")
    await e.steps.complete(p("kepala"), (await open_step(run.id)).run_step_id)
    await e.steps.complete(p("sekretaris"), (await open_step(run.id)).run_step_id, note="No. 1")
    await e.steps.complete(p("perencana"), (await open_step(run.id)).run_step_id)
    await e.steps.complete(p("perencana"), (await open_step(run.id)).run_step_id)


async def main(runs: int, open_runs: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        if url:
            from sqlalchemy import inspect

            async with db.engine.connect() as conn:
                tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            if tables:
                await db.dispose()
                raise SystemExit(
                    f"{url.split('@')[-1]} has tables ({len(tables)}): give the benchmark "
                    "an empty scratch database, never the bot's own."
                )
        await db.create_all()
        clock = FakeClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
        office = await build_office(db, clock, Path(tmp) / "files")
        start = time.perf_counter()
        for _ in range(runs):
            await walk(office, clock)
        elapsed = time.perf_counter() - start
        for n in range(open_runs):  # left at step 6, so /tugas and the sweep have work
            await to_collection(office, clock, f"Terbuka {n + 1}")
        t0 = time.perf_counter()
        tasks = await office.engine.queries.tasks(office.id("unit1"))
        t_tasks = time.perf_counter() - t0
        t0 = time.perf_counter()
        await office.engine.queries.run_status(include_closed=True)
        t_status = time.perf_counter() - t0
        # Past every step-6 due time, on a working morning: one sweep queues
        # a reminder for each unit of each open run.
        clock.set(datetime(2026, 11, 4, 1, 0, tzinfo=UTC))  # Wednesday 08:00 WIB
        deadlines = Deadlines(office.engine, OfficeConfig())
        t0 = time.perf_counter()
        swept = await deadlines.sweep()
        t_sweep = time.perf_counter() - t0
        await db.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database:            {'postgresql' if url else 'sqlite'}")
    print(f"runs walked:         {runs} (15 steps, 5 unit uploads each)")
    print(f"total:               {elapsed:.2f} s")
    print(f"per run:             {elapsed / runs * 1000:.0f} ms")
    print(f"/tugas query:        {t_tasks * 1000:.1f} ms ({len(tasks)} open tasks of a unit)")
    print(f"/status (all runs):  {t_status * 1000:.1f} ms ({runs + open_runs} runs)")
    print(f"deadline sweep:      {t_sweep * 1000:.1f} ms ({swept})")
    print(f"peak RSS:            {rss:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20, help="whole runs walked")
    parser.add_argument("--open", type=int, default=10, help="runs left open at step 6")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.open, args.database_url))
