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
from bot.engine import IncomingFile
from tests.support import DATA, FORM, UNIT_FILES, XLSX, build_office


async def walk(office, clock) -> None:  # type: ignore[no-untyped-def]
    e, p = office.engine, office.id

    async def open_step(run_id: int):  # type: ignore[no-untyped-def]
        statuses = await e.run_status(run_id)
        return next(s for s in statuses[0].steps if s.state == "open")

    run = await e.start_run(p("kepala"), "Bench")
    s = await open_step(run.id)
    await e.upload(p("perencana"), s.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX))
    await e.complete(p("perencana"), s.run_step_id)
    await e.complete(p("perencana"), (await open_step(run.id)).run_step_id)
    await e.schedule_meeting(
        p("sekretaris"),
        (await open_step(run.id)).run_step_id,
        clock.now() + timedelta(days=1),
        "Aula",
    )
    await e.complete(p("kepala"), (await open_step(run.id)).run_step_id)
    s6 = await open_step(run.id)
    receipts = []
    for i, name in enumerate(UNIT_FILES.values(), start=1):
        receipts.append(
            await e.upload(
                p(f"unit{i}"), s6.run_step_id, IncomingFile((DATA / name).read_bytes(), name, XLSX)
            )
        )
    for r in receipts:
        await e.review(p("perencana"), r.file.id, accept=True)
    for who in ("perencana", "sekretaris"):
        s = await open_step(run.id)
        if who == "perencana":
            await e.upload(p(who), s.run_step_id, IncomingFile(b"PK", "d.xlsx", XLSX))
        await e.complete(p(who), s.run_step_id)
    await e.decide(p("kepala"), (await open_step(run.id)).run_step_id, "setuju")
    await e.complete(p("kepala"), (await open_step(run.id)).run_step_id)
    await e.complete(p("sekretaris"), (await open_step(run.id)).run_step_id, note="No. 1")
    await e.complete(p("perencana"), (await open_step(run.id)).run_step_id)
    await e.complete(p("perencana"), (await open_step(run.id)).run_step_id)


async def main(runs: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        if url:
            from sqlmodel import SQLModel

            from bot import models  # noqa: F401

            async with db.engine.begin() as conn:
                await conn.run_sync(SQLModel.metadata.drop_all)
        await db.create_all()
        clock = FakeClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
        office = await build_office(db, clock, Path(tmp) / "files")
        start = time.perf_counter()
        for _ in range(runs):
            await walk(office, clock)
        elapsed = time.perf_counter() - start
        t0 = time.perf_counter()
        tasks = await office.engine.tasks(office.id("perencana"))
        t_tasks = time.perf_counter() - t0
        t0 = time.perf_counter()
        await office.engine.run_status(include_closed=True)
        t_status = time.perf_counter() - t0
        await db.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database:            {'postgresql' if url else 'sqlite'}")
    print(f"runs walked:         {runs} (15 steps, 5 unit uploads each)")
    print(f"total:               {elapsed:.2f} s")
    print(f"per run:             {elapsed / runs * 1000:.0f} ms")
    print(f"/tugas query:        {t_tasks * 1000:.1f} ms ({len(tasks)} tasks)")
    print(f"/status (all runs):  {t_status * 1000:.1f} ms")
    print(f"peak RSS:            {rss:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.database_url))
