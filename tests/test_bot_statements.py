"""SQL statements per update (issue 10): `/tugas`, `/status`, a press on a
step's button and a typed note each cost a fixed number of statements,
whatever the number of open runs. Counted with a `before_cursor_execute`
listener on the bot's engine while the real Application handles each update
from the fake Bot API server (tests/fakes/statements.py says what counts).

The budget is the handlers' and the engine's: at most 11, so that the
update-id bookkeeping's one statement (counted apart, by its table) keeps
an update within 12. A count is deterministic, so it is asserted; a time
never is.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from bot.botapi import Person as FakeUser
from tests.fakes.statements import StatementLog, UpdateStatements
from tests.fakes.world import World, running_bot

BUDGET = 11  # + the bookkeeping's one statement = 12 (issue 10)
MANY = 12  # more open runs than /tugas shows task messages (10)
# Write transactions per update. `/status` writes nothing: its one is the
# done mark. The others' marks ride in their first write's commit: the
# `/tugas` lines kept with their buttons, the question a press asks, the
# note (then the answer kept with the task's buttons).
COMMITS = {"/tugas": 1, "/status": 1, "note": 2, "press": 1}


async def enrol(world: World) -> dict[str, FakeUser]:
    return {
        "kepala": await world.join("kepala", 1001, "Drs. Kepala", "kepala_badan"),
        "sekretaris": await world.join("sekretaris", 1002, "Sekretaris", "sekretaris"),
        "rina": await world.join("rina", 1003, "Rina", "perencana"),
        "dodi": await world.join("dodi", 1004, "Dodi", "perencana"),
    }


async def one(world: World, log: StatementLog, send: Awaitable[Any]) -> UpdateStatements:
    """The statements of the one update `send` pushes."""
    with log.since() as handled:
        await send
        await world.idle()
    assert len(handled) == 1
    return handled[0]


def task_message(person: FakeUser) -> dict[str, Any]:
    """The person's latest task message of step 2, with its buttons."""
    return next(
        m
        for m in reversed(person.find("Langkah 2"))
        if (m.get("reply_markup") or {}).get("inline_keyboard")
    )


async def counts(
    tmp_path: Path, runs: int, database_url: str | None
) -> dict[str, UpdateStatements]:
    tmp_path.mkdir()  # noqa: ASYNC240 (before the bot runs)
    async with running_bot(tmp_path, database_url=database_url) as world:
        p = await enrol(world)
        kepala = await world.member_id(p["kepala"])
        for n in range(runs):
            await world.services.engine.runs.start(kepala, f"Kegiatan {n + 1}")
        await world.idle()
        log = StatementLog(world.services.db.engine, world.app)
        try:
            rina, dodi = p["rina"], p["dodi"]
            found = {
                "/tugas": await one(world, log, rina.send_command("/tugas")),
                "/status": await one(world, log, rina.send_command("/status")),
                # A note typed as a reply to a task is kept for its button.
                "note": await one(world, log, rina.send_text("Sudah dicek", task_message(rina))),
                # Unggah berkas: the next file is for this task.
                "press": await one(world, log, dodi.press(task_message(dodi), "Unggah berkas")),
            }
            assert "Catatan disimpan" in rina.last["text"] or "catatan" in rina.last["text"].lower()
            return found
        finally:
            log.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    from tests.conftest import PG_URL

    if request.param == "sqlite":
        return None
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set")
    url: str = request.getfixturevalue("pg_url")
    return url


async def test_statements_per_update_are_few_and_flat(
    tmp_path: Path, database_url: str | None
) -> None:
    if database_url:  # each world starts on an empty database (another test may have used it)
        await drop_tables(database_url)
    few = await counts(tmp_path / "one", 1, database_url)
    if database_url:
        await drop_tables(database_url)
    many = await counts(tmp_path / "many", MANY, database_url)
    report = {k: (few[k].count, many[k].count) for k in few}
    for kind, record in many.items():
        assert record.count <= BUDGET, (kind, report, record.statements)
        # The inbox marks it done: one statement, in the command's commit or after.
        assert len(record.bookkeeping) == 1, (kind, record.bookkeeping)
        # ...and no transaction of its own where the update wrote anything.
        assert record.commits == COMMITS[kind], (kind, record.commits)
        # Every statement has a cache key: none is compiled anew on each update
        # (rows written into a VALUES list were, costing more than the rest).
        assert record.uncached == [], (kind, record.uncached)
        assert record.count + len(record.bookkeeping) <= BUDGET + 1, (kind, report)
        assert few[kind].count == record.count, (
            kind,
            report,
            few[kind].statements,
            record.statements,
        )


async def drop_tables(url: str) -> None:
    from sqlalchemy import text

    from bot.db import Database

    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await db.dispose()
