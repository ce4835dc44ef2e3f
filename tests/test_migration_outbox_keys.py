"""Migration 0002 keeps reminder and escalation keys meaningful across the
upgrade: rewritten to carry the due time, so the same reminder is not sent
again on the day of the upgrade."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlmodel import SQLModel, select

from bot import migrate
from bot.clock import FakeClock
from bot.db import Database
from bot.deadlines import Deadlines
from bot.migrate import upgrade
from bot.models import Notification
from bot.office import OfficeConfig
from tests.support import build_office


async def downgrade(db: Database, revision: str) -> None:
    await migrate.downgrade(db, revision)


async def migrated(db: Database) -> None:
    """The shared fixture's database (its tables made directly) emptied and
    built again by the migrations, as a real office's is."""
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await upgrade(db)


async def test_old_keys_are_rewritten_and_not_sent_twice(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    await migrated(db)
    office = await build_office(db, clock, tmp_path)
    clock.set(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))  # Monday 08:00 WIB
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
    await downgrade(db, "0001")  # as if the run had started before the upgrade
    async with db.engine.begin() as conn:
        rs_id, due = (
            await conn.execute(
                text("SELECT id, due_at FROM runstep WHERE run_id = :r AND state = 'open'"),
                {"r": run.id},
            )
        ).one()
        a_id = (
            await conn.execute(
                text("SELECT id FROM assignment WHERE run_step_id = :s"), {"s": rs_id}
            )
        ).scalar_one()
        m = office.id("perencana")
        boss = office.id("sekretaris")
        # Sent before the upgrade, with the old keys (step 2 due 09:00, now 10:00).
        for key, template in (
            (f"remind:{rs_id}:{a_id}:{m}:1:0", "reminder"),
            (f"escalate:{rs_id}:{boss}:2:0", "escalation"),
        ):
            await conn.execute(
                text(
                    "INSERT INTO notification (key, member_id, template, context, run_id, "
                    "run_step_id, state, attempts, created_at, not_before) VALUES (:k, :m, :t, "
                    "'{}', :r, :s, 'sent', 1, :now, :now)"
                ),
                {
                    "k": key,
                    "m": m if template == "reminder" else boss,
                    "t": template,
                    "r": run.id,
                    "s": rs_id,
                    "now": due,
                },
            )
    await upgrade(db)
    async with db.session() as s:
        rows = (await s.exec(select(Notification).where(Notification.state == "sent"))).all()
    keys = {n.template: n.key for n in rows if n.template in ("reminder", "escalation")}
    assert keys["reminder"].split(":")[2].isdigit() and keys["reminder"].endswith(f":{m}:0")
    assert keys["escalation"].endswith(f":{boss}:1")
    assert all(n.office_hours_only for n in rows if n.template in ("reminder", "escalation"))
    clock.set(datetime(2026, 11, 2, 3, 0, tzinfo=UTC))  # 10:00: one hour late
    result = await Deadlines(office.engine, OfficeConfig()).sweep()
    # The other planner's reminder and the second level are new; nothing is sent twice.
    async with db.session() as s:
        mine = (
            await s.exec(
                select(Notification).where(
                    Notification.template == "reminder", Notification.member_id == m
                )
            )
        ).all()
        sekretaris = (
            await s.exec(
                select(Notification).where(
                    Notification.template == "escalation", Notification.member_id == boss
                )
            )
        ).all()
    assert len(mine) == 1 and len(sekretaris) == 1
    assert result.reminders == 1
