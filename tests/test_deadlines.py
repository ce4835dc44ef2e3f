"""Reminders, escalation and the digest, with the clock under control."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.db import Database
from bot.deadlines import Deadlines
from bot.models import Event, Notification, OutboxState, RunStep, StepState
from bot.office import OfficeConfig
from bot.outbox import Outbox
from bot.texts import Texts
from bot.views import IncomingFile
from tests.support import FORM, XLSX, Office, to_collection, workbook

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
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
    step2 = await open_step(office, run.id)  # perencana, 60 minutes
    assert step2.due_at == at(2026, 11, 9, 8, 0)  # 30 min Friday + 30 min Monday

    office.clock.set(at(2026, 11, 6, 16, 29))
    assert (await d.sweep()).reminders == 0
    for moment in (at(2026, 11, 7, 9, 0), at(2026, 11, 8, 10, 0), at(2026, 11, 9, 7, 59)):
        office.clock.set(moment)  # Saturday, Sunday, Monday before due
        assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 9, 8, 0))  # exactly due: not late yet
    assert (await d.sweep()).reminders == 0
    assert await d.next_moment() == at(2026, 11, 9, 8, 1)
    office.clock.set(at(2026, 11, 9, 8, 1))
    result = await d.sweep()
    assert result.reminders == 2  # both planners
    rows = await notes(office, "reminder")
    assert {r.member_id for r in rows} == {office.id("perencana"), office.id("perencana2")}
    assert rows[0].context["late_minutes"] == 1
    text = Texts().render("reminder", **rows[0].context)
    assert "Terlambat: <b>1 menit</b>" in text and "0 menit" not in text
    # A second sweep at the same moment, or a minute later, sends nothing new.
    assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 9, 8, 2))
    assert (await d.sweep()).reminders == 0


async def test_due_at_closing_reminds_once_a_minute_late_next_morning(office: Office) -> None:
    """Past due overnight is not yet a working minute late: no "0 menit"."""
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 15, 0))  # Monday
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
    step2 = await open_step(office, run.id)
    assert step2.due_at == at(2026, 11, 2, 16, 0)  # closing
    office.clock.set(at(2026, 11, 3, 7, 30))  # next opening: 0 working minutes late
    assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 3, 7, 31))
    assert (await d.sweep()).reminders == 2
    [row, _] = await notes(office, "reminder")
    assert row.context["late_minutes"] == 1


async def test_a_reminder_waits_for_a_full_working_minute_to_the_second(
    office: Office,
) -> None:
    """The comparison is exact: 57 working seconds late is not a minute
    (rounded to a tenth, 0.95, it used to be 1.0), nor is an escalation owed
    3 seconds before its working hour is up."""
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))  # Monday
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
    step2 = await open_step(office, run.id)
    assert step2.due_at == at(2026, 11, 2, 9, 0)
    for second in (57, 59):
        office.clock.set(at(2026, 11, 2, 9, 0, second))
        assert (await d.sweep()).reminders == 0
    office.clock.advance(seconds=1)  # 09:01:00, a working minute late
    assert (await d.sweep()).reminders == 2
    office.clock.set(at(2026, 11, 2, 9, 59, 57))  # 59.95 minutes: not yet the hour
    assert (await d.sweep()).escalations == 0
    office.clock.set(at(2026, 11, 2, 10, 0))
    assert (await d.sweep()).escalations == 1


async def test_escalation_after_waktu_again_and_daily_repeat(office: Office) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))  # Monday
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
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
    office.clock.set(at(2026, 11, 2, 11, 0))  # waktu once more: up the chain
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (0, 1)
    [_, head] = await notes(office, "escalation")
    assert head.member_id == office.id("kepala")
    assert (head.context["level"], head.context["told"]) == (2, ["Sekretaris"])
    text = Texts().render("escalation", **head.context)
    assert "Eskalasi tingkat 2" in text and "sudah disampaikan kepada: Sekretaris" in text
    office.clock.set(at(2026, 11, 2, 15, 0))
    r = await d.sweep()  # still the same working day, and the chain has no third level
    assert (r.reminders, r.escalations) == (0, 0)
    office.clock.set(at(2026, 11, 3, 7, 30))  # next opening: the daily repeat
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (2, 0)
    async with office.db.session() as s:
        kinds = [e.kind for e in (await s.exec(select(Event).order_by(Event.seq))).all()]
    assert kinds.count("reminder") == 4 and kinds.count("escalation") == 2


async def test_collection_reminds_only_units_that_owe(office: Office) -> None:
    e, p, d = office.engine, office.id, Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 7, 30))
    run_id = await to_collection(office)
    s6 = await open_step(office, run_id)
    for i in (1, 2, 4):
        await e.collection.upload(
            p(f"unit{i}"), s6.id, IncomingFile(workbook(seed=i), f"u{i}.xlsx", XLSX)
        )
    office.clock.set(s6.due_at + timedelta(minutes=1))  # a minute late
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
    await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 2, 11, 0))
    await asyncio.gather(d1.sweep(), d2.sweep())
    rows = await notes(office, "reminder")
    assert len(rows) == 2
    escalations = await notes(office, "escalation")  # 120 minutes late: both levels
    assert sorted(n.member_id for n in escalations) == [
        office.id("kepala"),
        office.id("sekretaris"),
    ]


async def test_paused_run_and_moved_due(office: Office) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
    step2 = await open_step(office, run.id)
    await office.engine.runs.pause(office.id("admin"), run.id, True)
    office.clock.set(at(2026, 11, 2, 10, 0))
    assert (await d.sweep()).reminders == 0
    await office.engine.runs.pause(office.id("admin"), run.id, False)
    await office.engine.runs.move_due(office.id("admin"), step2.id, at(2026, 11, 2, 14, 0))
    assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 2, 14, 1))
    assert (await d.sweep()).reminders == 2
    async with office.db.session() as s:
        kinds = [e.kind for e in (await s.exec(select(Event).order_by(Event.seq))).all()]
    assert {"reminders_paused", "reminders_resumed", "due_moved"} <= set(kinds)


async def test_digest_once_a_day_at_opening(office: Office) -> None:
    """The digest names the people who hold each late step (a delegate in
    place of the role, each unit's member), once a day at opening."""
    e, p, d = office.engine, office.id, Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await e.runs.start(p("kepala"), "Data Kinerja TW III")
    [task] = await e.queries.tasks(p("perencana"))
    await e.delegation.reassign(p("perencana"), task.assignment_id, p("perencana2"))
    run2 = await to_collection(office, "Data Kinerja TW IV")
    s6 = await open_step(office, run2)
    for i in (1, 2, 4):
        await e.collection.upload(
            p(f"unit{i}"), s6.id, IncomingFile(workbook(seed=i), f"u{i}.xlsx", XLSX)
        )
    office.clock.set(at(2026, 11, 2, 20, 0))
    assert (await d.sweep()).digests == 0  # office closed
    office.clock.set(at(2026, 11, 3, 7, 30))
    assert (await d.sweep()).digests == 2
    assert (await d.sweep()).digests == 0
    digests = await notes(office, "digest")
    assert sorted(n.member_id for n in digests) == sorted([p("kepala"), p("sekretaris")])
    tw3, tw4 = digests[0].context["runs"]
    assert tw3["title"] == "Data Kinerja TW III"
    assert [s["number"] for s in tw3["late"]] == [2]
    assert tw3["late"][0]["holders"] == [
        {
            "role_name": "Kasubbag Perencanaan / Perencana",
            "unit_name": None,
            "names": ["Perencana Dua"],
            "delegated": True,
        }
    ]
    assert [s["number"] for s in tw4["late"]] == [6]
    assert [(h["unit_name"], h["names"]) for h in tw4["late"][0]["holders"]] == [
        ("Bidang Politik Dalam Negeri", ["Staf 3"]),
        ("Bidang Kewaspadaan Nasional dan Penanganan Konflik", ["Staf 5"]),
    ]
    text = Texts().render("digest", **digests[0].context)
    assert "Langkah 2 terlambat" in text and "Selasa, 3 November 2026" in text
    assert "Perencana Dua (dilimpahkan)" in text and "Perencana Satu" not in text
    assert "Bidang Politik Dalam Negeri: Staf 3" in text
    assert "Staf 1" not in text  # delivered units hold nothing


async def test_digest_only_in_the_first_half_hour_after_opening(office: Office) -> None:
    """A run opened mid-morning gets no 'morning' digest that day (the head
    was just told), nor does a bot that was down all morning send one at
    14:00: the digest goes out in the first 30 working minutes after
    opening, and the next morning covers the run."""
    e, p, d = office.engine, office.id, Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 10, 0))  # Monday 10:00
    await e.runs.start(p("kepala"), "TW III")
    assert (await d.sweep()).digests == 0
    office.clock.set(at(2026, 11, 2, 14, 0))  # the first sweep since (down all morning)
    assert (await d.sweep()).digests == 0
    office.clock.set(at(2026, 11, 3, 7, 29))  # Tuesday, not open yet
    assert (await d.sweep()).digests == 0
    office.clock.set(at(2026, 11, 3, 8, 0))  # 30 working minutes after opening: too late
    assert (await d.sweep()).digests == 0
    assert await notes(office, "digest") == []
    office.clock.set(at(2026, 11, 4, 7, 59))  # Wednesday, the window's last minute
    assert (await d.sweep()).digests == 2
    assert (await d.sweep()).digests == 0


async def test_levels_and_interval_come_from_the_sop_file(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    from bot.sop import SopRegistry
    from bot.sop.schema import Reminders
    from tests.support import build_office

    seed = SopRegistry.load().get("pengumpulan-data-kinerja")
    custom = seed.model_copy(update={"reminders": Reminders(escalate_after=15, repeat_every=30)})
    office = await build_office(db, clock, tmp_path, sops=SopRegistry([custom]))
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.runs.start(office.id("kepala"), "TW III")  # step 2 due 09:00
    results = []
    for minute in (0, 1, 14, 15, 29, 30, 61):
        office.clock.set(at(2026, 11, 2, 9, 0) + timedelta(minutes=minute))
        r = await d.sweep()
        results.append((minute, r.reminders, r.escalations))
    # Late from the first minute; 15 minutes: the sekretaris; 30: the
    # kepala_badan (the chain's second level).
    assert results == [
        (0, 0, 0),
        (1, 2, 0),
        (14, 0, 0),
        (15, 0, 1),
        (29, 0, 0),
        (30, 2, 1),
        (61, 2, 0),
    ]


async def test_a_returned_unit_is_reminded_during_validation(office: Office) -> None:
    e, p, d = office.engine, office.id, Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 7, 30))
    run_id = await to_collection(office)
    s6 = await open_step(office, run_id)
    receipts = [
        await e.collection.upload(
            p(f"unit{i}"), s6.id, IncomingFile(workbook(seed=i), f"u{i}.xlsx", XLSX)
        )
        for i in range(1, 6)
    ]
    for r in receipts[:4]:
        await e.collection.review(p("perencana"), r.file.id, accept=True)
    await e.collection.review(
        p("perencana"), receipts[4].file.id, accept=False, note="Lampiran kurang"
    )
    s7 = await open_step(office, run_id)
    office.clock.set(s7.due_at + timedelta(minutes=1))
    await d.sweep()
    reminded = {n.member_id: n for n in await notes(office, "reminder")}
    assert set(reminded) == {p("unit5"), p("perencana"), p("perencana2")}
    unit5 = reminded[p("unit5")]
    assert unit5.context["number"] == 6 and unit5.context["actions"][0]["verb"] == "up"
    assert unit5.context["due_at"] == s7.due_at.isoformat()


async def test_reminders_wait_for_office_hours_at_send_time(office: Office) -> None:
    """A reminder queued at 15:59 and not sent then (a 502, a crash) is not
    sent at 21:00 but deferred to the next opening; a task is sent at once."""
    outbox = Outbox(office.db, office.clock, calendar=office.engine.calendar)
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 2, 15, 59))
    assert (await d.sweep()).reminders == 2
    reminder = (await notes(office, "reminder"))[0]
    assert reminder.office_hours_only
    office.clock.set(at(2026, 11, 2, 21, 0))
    assert reminder.id in [n.id for n in await outbox.due()]
    assert await outbox.begin(reminder.id) is None  # deferred, not sent
    async with office.db.session() as s:
        row = await s.get(Notification, reminder.id)
    assert row.state == OutboxState.pending and row.attempts == 0
    assert row.not_before == at(2026, 11, 3, 7, 30)
    assert reminder.id not in [n.id for n in await outbox.due()]
    # A message caused by someone's own action is not held back.
    step2 = await open_step(office, run.id)
    form = IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
    await office.engine.collection.upload(office.id("perencana"), step2.id, form)
    await office.engine.steps.complete(office.id("perencana"), step2.id)
    task = (await notes(office, "task"))[-1]
    assert not task.office_hours_only and await outbox.begin(task.id) is not None
    office.clock.set(at(2026, 11, 3, 7, 30))
    # By then step 2 is done: the reminder is dropped, not sent.
    assert await outbox.begin(reminder.id) is None
    async with office.db.session() as s:
        row = await s.get(Notification, reminder.id)
    assert (row.state, row.last_error) == (OutboxState.dropped, "step_closed")


async def test_a_newer_reminder_supersedes_the_pending_one(office: Office) -> None:
    """A reminder held overnight (429) is replaced by the next day's: one per
    person and step."""
    outbox = Outbox(office.db, office.clock, calendar=office.engine.calendar)
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 2, 9, 30))
    await d.sweep()
    [first, _] = await notes(office, "reminder")
    await outbox.begin(first.id)
    await outbox.retry_later(first.id, 3600 * 24, "Flood", count_attempt=False)
    office.clock.set(at(2026, 11, 3, 7, 30))
    assert (await d.sweep()).reminders == 2
    pending = [n for n in await notes(office, "reminder") if n.state == OutboxState.pending]
    assert sorted(n.member_id for n in pending) == sorted(
        [office.id("perencana"), office.id("perencana2")]
    )
    assert all(n.context["seq"] == 1 for n in pending)
    async with office.db.session() as s:
        old = await s.get(Notification, first.id)
        dropped = (await s.exec(select(Event).where(Event.kind == "notification_dropped"))).all()
    assert (old.state, old.last_error) == (OutboxState.dropped, "superseded")
    # Both planners' old reminders (and yesterday's unsent digests) are replaced.
    dropped_reminders = [e for e in dropped if e.details["template"] == "reminder"]
    assert first.id in [e.details["notification_id"] for e in dropped_reminders]
    assert {e.details["reason"] for e in dropped} == {"superseded"}


async def test_a_reminder_being_sent_is_not_superseded(office: Office) -> None:
    """The sender claimed yesterday's reminder (the HTTP call is under way)
    when the next sweep queues today's: the claimed one is not dropped, so its
    delivery is recorded as a delivery, not denied by a 'superseded' event."""
    outbox = Outbox(office.db, office.clock, calendar=office.engine.calendar)
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 2, 15, 59))
    await d.sweep()
    [first, _] = await notes(office, "reminder")
    assert await outbox.begin(first.id) is not None  # claimed; send in flight
    office.clock.set(at(2026, 11, 3, 7, 30))
    assert (await d.sweep()).reminders == 2
    await outbox.sent(first.id, message_id=77)
    async with office.db.session() as s:
        row = await s.get(Notification, first.id)
        dropped = (await s.exec(select(Event).where(Event.kind == "notification_dropped"))).all()
    assert (row.state, row.telegram_message_id) == (OutboxState.sent, 77)
    assert first.id not in [e.details["notification_id"] for e in dropped]


async def test_paused_or_cancelled_run_drops_queued_reminders(office: Office) -> None:
    outbox = Outbox(office.db, office.clock, calendar=office.engine.calendar)
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 2, 10, 0))
    assert (await d.sweep()).escalations == 1
    await office.engine.runs.pause(office.id("admin"), run.id, True)
    queued = [*await notes(office, "reminder"), *await notes(office, "escalation")]
    for n in queued:
        assert await outbox.begin(n.id) is None
    async with office.db.session() as s:
        rows = [await s.get(Notification, n.id) for n in queued]
    assert {(r.state, r.last_error) for r in rows} == {(OutboxState.dropped, "run_paused")}
    # Resumed: the reminders are owed again and queued afresh.
    await office.engine.runs.pause(office.id("admin"), run.id, False)
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (2, 1)
    await office.engine.runs.cancel(office.id("kepala"), run.id, "Salah judul")
    for n in await notes(office, "reminder"):
        if n.state == OutboxState.pending:
            assert await outbox.begin(n.id) is None
    async with office.db.session() as s:
        states = {
            (n.state, n.last_error)
            for n in (await s.exec(select(Notification).where(Notification.template == "reminder")))
        }
    assert states == {(OutboxState.dropped, "run_paused"), (OutboxState.dropped, "run_cancelled")}


async def test_moving_the_due_time_restarts_reminders_and_escalation(office: Office) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    run = await office.engine.runs.start(office.id("kepala"), "TW III")
    step2 = await open_step(office, run.id)  # due 09:00
    office.clock.set(at(2026, 11, 2, 10, 0))
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (2, 1)
    await office.engine.runs.move_due(office.id("admin"), step2.id, at(2026, 11, 2, 14, 0))
    office.clock.set(at(2026, 11, 2, 13, 59))
    assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 2, 14, 0))  # the new due time itself: not late
    assert (await d.sweep()).reminders == 0
    office.clock.set(at(2026, 11, 2, 14, 1))
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (2, 0)
    office.clock.set(at(2026, 11, 2, 15, 0))  # waktu (60) after the new due time
    r = await d.sweep()
    assert (r.reminders, r.escalations) == (0, 1)
    escalations = await notes(office, "escalation")
    assert [n.member_id for n in escalations] == [office.id("sekretaris")] * 2
    assert datetime.fromisoformat(escalations[1].context["due_at"]) == at(2026, 11, 2, 14, 0)


async def test_one_broken_step_does_not_stop_the_sweep(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    broken = await office.engine.runs.start(office.id("kepala"), "TW II")
    fine = await office.engine.runs.start(office.id("kepala"), "TW III")
    async with office.db.transaction() as s:
        rs = await open_step(office, broken.id)
        rs.step_key = "langkah_yang_dihapus"  # the definition changed under the run
        s.add(rs)
    office.clock.set(at(2026, 11, 2, 9, 30))
    result = await d.sweep()
    assert result.reminders == 2 and result.errors >= 1
    reminded = {n.run_id for n in await notes(office, "reminder")}
    assert reminded == {fine.id}
    assert "langkah_yang_dihapus" in caplog.text
    # The fine run's first escalation (due 09:00, then its waktu of 60 minutes):
    # the broken step is passed over, not a reason to give no next moment.
    assert await d.next_moment() == at(2026, 11, 2, 10, 0)


async def test_escalation_levels_come_from_the_sop(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    from bot.sop import SopRegistry
    from bot.sop.schema import Reminders
    from tests.support import build_office

    seed = SopRegistry.load().get("pengumpulan-data-kinerja")
    custom = seed.model_copy(update={"reminders": Reminders(escalation_levels=1)})
    office = await build_office(db, clock, tmp_path, sops=SopRegistry([custom]))
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 3, 15, 0))  # far later: still only the first level
    await d.sweep()
    assert [n.member_id for n in await notes(office, "escalation")] == [office.id("sekretaris")]
    assert d.supervisor_chain(custom, "anggota_tim") == ["sekretaris", "kepala_badan"]
    assert d.escalation_chain(custom, custom.steps[1], "perencana") == ["sekretaris"]


def test_a_step_reminders_block_overrides_only_what_it_sets() -> None:
    from bot.sop import SopRegistry
    from bot.sop.schema import Reminders

    seed = SopRegistry.load().get("pengumpulan-data-kinerja")
    step = seed.steps[1].model_copy(update={"reminders": Reminders(repeat_every=30)})
    sop = seed.model_copy(
        update={
            "reminders": Reminders(escalate_after=15, escalation_levels=1),
            "steps": [seed.steps[0], step, *seed.steps[2:]],
        }
    )
    merged = sop.reminders_for(step)
    assert (merged.repeat_every, merged.escalate_after, merged.escalation_levels) == (30, 15, 1)
    assert sop.reminders_for(seed.steps[0]) == sop.reminders


async def test_vacant_supervisor_tells_the_admins_and_is_recorded(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    d = Deadlines(office.engine, OfficeConfig())
    await office.members.revoke(office.id("admin"), office.id("sekretaris"))
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 2, 10, 0))
    assert (await d.sweep()).escalations == 1
    assert (await d.sweep()).escalations == 0
    [esc] = await notes(office, "escalation")
    assert esc.member_id == office.id("admin") and esc.context["vacant_role"] == "Sekretaris"
    assert "Belum ada yang memegang peran Sekretaris" in Texts().render("escalation", **esc.context)
    async with office.db.session() as s:
        vacant = (await s.exec(select(Event).where(Event.kind == "escalation_vacant"))).all()
    assert len(vacant) == 1 and vacant[0].details["role"] == "sekretaris"
    assert "nobody holds the role" in caplog.text


def test_office_file_roles_are_checked_when_loaded(tmp_path: Path) -> None:
    from bot.office import OfficeFileError, load_office
    from bot.sop import SopRegistry

    path = tmp_path / "office.yaml"
    path.write_text(
        "supervisors:\n  perencana: sekertaris\ndigest_roles: [kepala_badan, kepala]\n",
        encoding="utf-8",
    )
    office = load_office(path)
    with pytest.raises(OfficeFileError) as info:
        office.check_roles(SopRegistry.load())
    assert "sekertaris" in str(info.value) and "kepala" in str(info.value)
    load_office(None).check_roles(SopRegistry.load())  # the default is consistent


async def test_no_digest_on_a_morning_with_no_open_run(office: Office) -> None:
    """'Tidak ada kegiatan yang sedang berjalan' every morning is noise: the
    digest goes out only while some run is open."""
    e, p, d = office.engine, office.id, Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 7, 30))
    assert (await d.sweep()).digests == 0
    run = await e.runs.start(p("kepala"), "TW III")
    await e.runs.cancel(p("kepala"), run.id or 0, "Salah periode")
    office.clock.set(at(2026, 11, 3, 7, 30))  # only a cancelled run
    assert (await d.sweep()).digests == 0
    assert await notes(office, "digest") == []
    await e.runs.start(p("kepala"), "TW IV")
    assert (await d.sweep()).digests == 2


async def test_a_reminder_held_overnight_and_sent_at_opening_is_the_days_one(
    office: Office,
) -> None:
    """A reminder that failed at 15:59 goes out at the next opening, when
    the day's own reminder also falls due: the person gets one of them, in
    whichever order the sender and the sweep come."""
    outbox = Outbox(office.db, office.clock, calendar=office.engine.calendar)
    d = Deadlines(office.engine, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 8, 0))
    await office.engine.runs.start(office.id("kepala"), "TW III")
    office.clock.set(at(2026, 11, 2, 15, 59))
    assert (await d.sweep()).reminders == 2
    held = await notes(office, "reminder")
    for n in held:
        await outbox.begin(n.id or 0)
        await outbox.retry_later(n.id or 0, 5, "Bad Gateway")
    office.clock.set(at(2026, 11, 3, 7, 30))
    # The sender comes first: yesterday's reminders go out at opening...
    first, second = held
    claimed = await outbox.begin(first.id or 0)
    assert claimed is not None
    await outbox.sent(first.id or 0, 1)
    # ...the other is on its way when the sweep looks.
    assert await outbox.begin(second.id or 0) is not None
    assert (await d.sweep()).reminders == 0
    assert [n.id for n in await notes(office, "reminder")] == [n.id for n in held]
    # The next morning the daily reminder comes as usual.
    await outbox.sent(second.id or 0, 2)
    office.clock.set(at(2026, 11, 4, 7, 31))
    assert (await d.sweep()).reminders == 2
