"""The deadline sweep's reads use their index (issue 10): the due-step query
and the next timer moment read a range of `ix_runstep_state_check_at`,
never every row of `runstep` (which holds every step of every run ever).

SQLite: EXPLAIN QUERY PLAN on empty tables (no statistics, so the plan is
the planner's fixed choice). PostgreSQL: EXPLAIN with sequential scans
disabled, so that the plan names the index when one fits and falls back to
"Seq Scan" only when none does; either way deterministic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlmodel.sql.expression import SelectOfScalar

from bot.db import Database
from bot.deadlines import due_steps, next_check

NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


def plan(conn: Connection, query: SelectOfScalar[Any]) -> list[str]:
    """The database's plan for `query`, one line a row."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    names = compiled.positiontup or []
    sqlite = conn.dialect.name == "sqlite"
    values = tuple(
        v.replace(tzinfo=None) if sqlite and isinstance(v, datetime) else v
        for v in (params[n] for n in names)
    )
    if sqlite:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values).all()
        return [str(row[-1]) for row in rows]
    conn.exec_driver_sql("SET enable_seqscan = off")
    return [str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", values).all()]


@pytest.mark.parametrize("query", [due_steps(NOW), next_check(NOW)], ids=["due", "next"])
async def test_sweep_reads_a_range_of_the_index(db: Database, query: SelectOfScalar[Any]) -> None:
    async with db.engine.connect() as conn:
        lines = await conn.run_sync(plan, query)
    text = "\n".join(lines)
    assert "ix_runstep_state_check_at" in text, text
    if db.engine.dialect.name == "sqlite":
        assert not any(line.startswith("SCAN runstep") for line in lines), text
    else:
        assert "Seq Scan on runstep" not in text, text
