"""Reminders, escalation and the digest, with the clock under control."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.deadlines import Deadlines
from bot.engine import IncomingFile
from bot.models import Event, Notification, RunStep, StepState
from bot.office import OfficeConfig
from bot.texts import Texts
from tests.support import XLSX, Office, to_collection, workbook

WIB = ZoneInfo("Asia/Jakarta")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=WIB)


async def notes(office: Office, template: str) -> list[Notification]:
    async with office.db.session() as s:
        rows = await s.exec(
            select(Notification).where(Notification.template == template).order_by(Notification.id)
        )
        return list(rows.all())


async def open_step(office: Office, run_id: int) -> RunStep:
    async with office.db.session() as s:
        return (
            await s.exec(
                select(RunStep).where(RunStep.run_id == run_id, RunStep.state == StepState.open)
            )
        ).one()


async def test_friday_afternoon_step_reminds_monday_morning(office: Office) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 6, 16, 0))  # Friday 16:00 WIB
    run = await office.engine.start_run(office.id("kepala"), "TW III")
    step2 = await open_step(office, run.id)  # perencana, 60 minutes
    assert step2.due_at == at(2026, 11, 9, 8, 0)  # 30 min Friday + 30 min Monday

    office.clock.set(at(2026, 11, 6, 16, 29))
    assert (await d.sweep()).reminders == 0
    for moment in (at(2026, 11, 7, 9, 0), at(2026, 11, 8, 10, 0), at(2026, 11, 9, 7, 59)):
        office.clock.set(moment)  # Saturday, Sunday, Monday before due
        assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 9, 8, 0))
    result = await d.sweep()
    assert result.reminders == 2  # both planners
    rows = await notes(office, "reminder")
    assert {r.member_id for r in rows} == {office.id("perencana"), office.id("perencana2")}
    assert rows[0].context["late_minutes"] == 0
    # A second sweep at the same moment, or a minute later, sends nothing new.
    assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 9, 8, 1))
    assert (await d.sweep()).reminders == 0


async def test_escalation_after_waktu_again_and_daily_repeat(office: Office) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))  # Monday
    run = await office.engine.start_run(office.id("kepala"), "TW III")
    step2 = await open_step(office, run.id)
    assert step2.due_at == at(2026, 11, 2, 9, 0)
    office.clock.set(at(2026, 11, 2, 9, 30))
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (2, 0)
    office.clock.set(at(2026, 11, 2, 10, 0))  # 60 working minutes late: the supervisor
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (0, 1)  # the planners' assignment, to its boss
    esc = await notes(office, "escalation")
    assert {n.member_id for n in esc} == {office.id("sekretaris")}
    assert esc[0].context["owing"] == [
        {
            "role_name": "Kasubbag Perencanaan / Perencana",
            "unit_name": None,
            "names": ["Perencana Satu", "Perencana Dua"],
        }
    ]
    office.clock.set(at(2026, 11, 2, 15, 0))
    assert (await d.sweep()).reminders == 0  # still the same working day
    office.clock.set(at(2026, 11, 3, 7, 30))  # next opening: the daily repeat
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (2, 0)
    async with office.db.session() as s:
        kinds = [e.kind for e in (await s.exec(select(Event).order_by(Event.seq))).all()]
    assert kinds.count("reminder") == 4 and kinds.count("escalation") == 1


async def test_collection_reminds_only_units_that_owe(office: Office) -> None:
    e, p, d = office.engine, office.id, Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 7, 30))
    run_id = await to_collection(office)
    s6 = await open_step(office, run_id)
    for i in (1, 2, 4):
        await e.upload(p(f"unit{i}"), s6.id, IncomingFile(workbook(seed=i), f"u{i}.xlsx", XLSX))
    office.clock.set(s6.due_at)
    assert (await d.sweep()).reminders == 2
    owed = {n.member_id for n in await notes(office, "reminder")}
    assert owed == {p("unit3"), p("unit5")}
    office.clock.set(office.engine.calendar.add_working_minutes(s6.due_at, 120))
    assert (await d.sweep()).escalations == 1  # one message to the secretary
    [esc] = await notes(office, "escalation")
    assert esc.member_id == p("sekretaris")
    assert [o["unit_name"] for o in esc.context["owing"]] == [
        "Bidang Politik Dalam Negeri",
        "Bidang Kewaspadaan Nasional dan Penanganan Konflik",
    ]
    text = Texts().render("escalation", **esc.context)
    assert "Bidang Politik Dalam Negeri (Staf 3)" in text


async def test_two_concurrent_sweeps_send_once(office: Office) -> None:
    d1 = Deadlines(office.engine, OfficeConfig())
    d2 = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.start_run(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 2, 11, 0))
    await asyncio.gather(d1.sweep(), d2.sweep())
    rows = await notes(office, "reminder")
    assert len(rows) == 2
    assert len(await notes(office, "escalation")) == 1


async def test_paused_run_and_moved_due(office: Office) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    run = await office.engine.start_run(office.id("kepala"), "TW III")
    step2 = await open_step(office, run.id)
    await d.pause(office.id("admin"), run.id, True)
    office.clock.set(at(2026, 11, 2, 10, 0))
    assert (await d.sweep()).reminders == 0
    await d.pause(office.id("admin"), run.id, False)
    await d.move_due(office.id("admin"), step2.id, at(2026, 11, 2, 14, 0))
    assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 2, 14, 0))
    assert (await d.sweep()).reminders == 2
    async with office.db.session() as s:
        kinds = [e.kind for e in (await s.exec(select(Event).order_by(Event.seq))).all()]
    assert {"reminders_paused", "reminders_resumed", "due_moved"} <= set(kinds)


async def test_digest_once_a_day_at_opening(office: Office) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.start_run(office.id("kepala"), "Data Kinerja TW III")
    office.clock.set(at(2026, 11, 2, 20, 0))
    assert (await d.sweep()).digests == 0  # office closed
    office.clock.set(at(2026, 11, 3, 7, 30))
    assert (await d.sweep()).digests == 2
    assert (await d.sweep()).digests == 0
    digest = (await notes(office, "digest"))[0]
    [run] = digest.context["runs"]
    assert run["title"] == "Data Kinerja TW III"
    assert [s["number"] for s in run["late"]] == [2]
    text = Texts().render("digest", **digest.context)
    assert "Langkah 2 terlambat" in text and "Selasa, 3 November 2026" in text


async def test_levels_and_interval_come_from_the_sop_file(db, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bot.sop import SopRegistry
    from bot.sop.schema import Reminders
    from tests.support import build_office

    seed = SopRegistry.load().get("pengumpulan-data-kinerja")
    custom = seed.model_copy(update={"reminders": Reminders(escalate_after=15, repeat_every=30)})
    office = await build_office(db, clock, tmp_path, sops=SopRegistry([custom]))
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.start_run(office.id("kepala"), "TW III")  # step 2 due 09:00
    results = []
    for minute in (0, 14, 15, 29, 30, 61):
        office.clock.set(at(2026, 11, 2, 9, 0) + timedelta(minutes=minute))
        r = await d.sweep()
        results.append((minute, r.reminders, r.escalations))
    assert results == [(0, 2, 0), (14, 0, 0), (15, 0, 1), (29, 0, 0), (30, 2, 0), (61, 2, 0)]


async def test_a_returned_unit_is_reminded_during_validation(office: Office) -> None:
    e, p, d = office.engine, office.id, Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 7, 30))
    run_id = await to_collection(office)
    s6 = await open_step(office, run_id)
    receipts = [
        await e.upload(p(f"unit{i}"), s6.id, IncomingFile(workbook(seed=i), f"u{i}.xlsx", XLSX))
        for i in range(1, 6)
    ]
    for r in receipts[:4]:
        await e.review(p("perencana"), r.file.id, accept=True)
    await e.review(p("perencana"), receipts[4].file.id, accept=False, note="Lampiran kurang")
    s7 = await open_step(office, run_id)
    office.clock.set(s7.due_at)
    await d.sweep()
    reminded = {n.member_id: n for n in await notes(office, "reminder")}
    assert set(reminded) == {p("unit5"), p("perencana"), p("perencana2")}
    unit5 = reminded[p("unit5")]
    assert unit5.context["number"] == 6 and unit5.context["actions"][0]["verb"] == "up"
    assert unit5.context["due_at"] == s7.due_at.isoformat()
