"""Alembic: the migrations build the same schema as the models, and the
bot refuses a database that is behind."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlmodel import SQLModel

from bot import models  # noqa: F401
from bot.db import Database
from bot.migrate import DatabaseBehind, require_current, upgrade


@pytest.fixture
async def empty_db(db: Database) -> Database:
    """The shared fixture's database, emptied (it creates tables directly)."""
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    return db


async def test_upgrade_matches_models(empty_db: Database) -> None:
    with pytest.raises(DatabaseBehind) as info:
        await require_current(empty_db)
    assert "sopbot db upgrade" in str(info.value)
    await upgrade(empty_db)
    await require_current(empty_db)

    def diff(conn: Connection) -> list[Any]:
        return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)

    async with empty_db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    await upgrade(empty_db)  # a second upgrade is a no-op


async def test_files_held_the_old_way_move_to_their_own_table(empty_db: Database) -> None:
    """0003: a PendingInput row of kind "held" becomes one HeldFiles row per
    group (also the oldest, group-less form); other questions stay. Rows are
    written as SQL, since the models may have moved on from revision 0001."""
    import json
    from datetime import UTC, datetime

    from sqlmodel import col, select

    from bot.models import HeldFiles, PendingInput

    await upgrade(empty_db, "0001")
    at = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    one = {"file_id": "f1", "name": "satu.xlsx", "batch": None}
    pages = [{"file_id": f"p{i}", "name": f"foto-{i}.jpg", "batch": "a1"} for i in (1, 2)]
    old = {"file_id": "f0", "name": "lama.pdf", "batch": None}
    groups = [{"id": 1, "batch": None, "files": [one]}, {"id": 2, "batch": "a1", "files": pages}]
    payloads = {
        1: ("held", {"groups": groups}),
        2: ("held", {"files": [old]}),
        3: ("meeting", {"run_step_id": 4}),
    }
    async with empty_db.engine.begin() as conn:
        for i, (kind, payload) in payloads.items():
            await conn.execute(
                text(
                    "INSERT INTO member (id, telegram_id, name, active, joined_at)"
                    " VALUES (:i, :t, :n, true, :at)"
                ),
                {"i": i, "t": 100 + i, "n": f"M{i}", "at": at},
            )
            await conn.execute(
                text(
                    "INSERT INTO pendinginput (member_id, kind, payload, created_at)"
                    " VALUES (:i, :k, :p, :at)"
                ),
                {"i": i, "k": kind, "p": json.dumps(payload), "at": at},
            )
    await upgrade(empty_db)
    async with empty_db.session() as s:
        held = (await s.exec(select(HeldFiles).order_by(col(HeldFiles.id)))).all()
        left = (await s.exec(select(PendingInput))).all()
    assert [(h.member_id, h.batch, h.files, h.created_at) for h in held] == [
        (1, None, [one], at),
        (1, "a1", pages, at),
        (2, None, [old], at),
    ]
    assert [(p.member_id, p.kind) for p in left] == [(3, "meeting")]
