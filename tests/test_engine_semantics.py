"""Run semantics a new user found wrong walking the SOP: notes per round,
workbook unit names, one task per person, meeting timing, steps nobody holds."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.models import Notification, RunStep, StepState
from bot.office import DEFAULT_UNITS
from bot.views import IncomingFile
from tests.support import FORM, XLSX, Office, to_collection, workbook


async def open_step(office: Office, run_id: int) -> RunStep:
    async with office.db.session() as s:
        [rs] = (
            await s.exec(
                select(RunStep).where(RunStep.run_id == run_id, RunStep.state == StepState.open)
            )
        ).all()
    return rs


async def outbox(office: Office, template: str, **where: object) -> list[Notification]:
    async with office.db.session() as s:
        query = select(Notification).where(Notification.template == template)
        for column, value in where.items():
            query = query.where(getattr(Notification, column) == value)
        return list((await s.exec(query.order_by(Notification.id))).all())


async def to_step8(office: Office) -> int:
    """A run whose units all delivered and were accepted: step 8 is open."""
    e, p = office.engine, office.id
    run_id = await to_collection(office)
    s6 = await open_step(office, run_id)
    for i, unit in enumerate(DEFAULT_UNITS, start=1):
        r = await e.collection.upload(
            p(f"unit{i}"), s6.id, IncomingFile(workbook(unit, i), f"u{i}.xlsx", XLSX)
        )
        await e.collection.review(p("perencana"), r.file.id, accept=True)
    return run_id


async def test_round_two_task_carries_only_this_rounds_notes(office: Office) -> None:
    e, p, clock = office.engine, office.id, office.clock
    run_id = await to_step8(office)
    s8 = await open_step(office, run_id)
    await e.collection.upload(p("perencana"), s8.id, IncomingFile(b"PK v1", "dok.xlsx", XLSX))
    clock.advance(minutes=5)
    await e.steps.complete(p("perencana"), s8.id, note="Dokumen putaran pertama.")
    clock.advance(minutes=5)
    await e.steps.complete(
        p("sekretaris"), (await open_step(office, run_id)).id, note="Mohon dikoreksi, Pak."
    )
    clock.advance(minutes=5)
    await e.steps.decide(
        p("kepala"), (await open_step(office, run_id)).id, "koreksi", note="Tabel 3 salah."
    )
    clock.advance(minutes=5)
    await e.steps.complete(
        p("sekretaris"), (await open_step(office, run_id)).id, note="Perbaiki tabel 3."
    )
    s8b = await open_step(office, run_id)
    assert (s8b.number, s8b.iteration) == (8, 2)
    [task] = await outbox(office, "task", run_step_id=s8b.id, member_id=p("perencana"))
    # Not the secretary's round-1 note to the head (step 9).
    assert [(n["number"], n["note"]) for n in task.context["notes"]] == [
        (10, "Tabel 3 salah."),
        (11, "Perbaiki tabel 3."),
    ]

    # Round 2 goes on: the secretary's step 9 sees this round's notes only.
    await e.collection.upload(p("perencana"), s8b.id, IncomingFile(b"PK v2", "dok2.xlsx", XLSX))
    clock.advance(minutes=5)
    await e.steps.complete(p("perencana"), s8b.id, note="Sudah diperbaiki.")
    s9b = await open_step(office, run_id)
    [task] = await outbox(office, "task", run_step_id=s9b.id, member_id=p("sekretaris"))
    assert [n["note"] for n in task.context["notes"]] == [
        "Tabel 3 salah.",
        "Perbaiki tabel 3.",
        "Sudah diperbaiki.",
    ]


async def test_workbook_naming_another_unit_is_a_finding(office: Office) -> None:
    from bot.texts import Texts
    from tests.support import DATA, UNIT_FILES

    e, p = office.engine, office.id
    run_id = await to_collection(office)
    s6 = await open_step(office, run_id)
    # Bidang Politik Dalam Negeri sends the Ideologi unit's file by mistake.
    wrong = DATA / UNIT_FILES["Bidang Ideologi dan Wawasan Kebangsaan"]
    receipt = await e.collection.upload(
        p("unit3"), s6.id, IncomingFile(wrong.read_bytes(), wrong.name, XLSX)
    )
    assert receipt.checks == [
        {
            "code": "unit_mismatch",
            "cell": "C2",
            "value": "Bidang Ideologi dan Wawasan Kebangsaan",
            "expected": "Bidang Politik Dalam Negeri",
        }
    ]
    # Still kept, for the planner to decide.
    assert office.storage.read(receipt.file.storage_path) == wrong.read_bytes()
    assert receipt.file.review_state.value == "received"
    [review] = await outbox(office, "file_for_review", member_id=p("perencana"))
    assert review.context["checks"] == receipt.checks
    assert Texts().render("workbook_findings", checks=receipt.checks).strip() == (
        '• Nama unit kerja (C2) berisi "Bidang Ideologi dan Wawasan Kebangsaan", '
        'bukan "Bidang Politik Dalam Negeri".'
    )
    # Case and spacing typed by hand do not matter.
    sloppy = IncomingFile(workbook("  bidang POLITIK   dalam negeri ", 7), "u3.xlsx", XLSX)
    assert (await e.collection.upload(p("unit3"), s6.id, sloppy)).checks == []


async def to_meeting(office: Office, starts_in: timedelta = timedelta(hours=3)) -> int:
    """A run brought to step 4, the meeting set `starts_in` from now: step 5 open."""
    e, p = office.engine, office.id
    run = await e.runs.start(p("kepala"), "TW IV 2026")
    [form] = await e.queries.tasks(p("perencana"))
    await e.collection.upload(
        p("perencana"), form.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
    )
    await e.steps.complete(p("perencana"), form.run_step_id)
    await e.steps.complete(p("perencana"), (await open_step(office, run.id or 0)).id)
    s4 = await open_step(office, run.id or 0)
    await e.steps.schedule_meeting(p("sekretaris"), s4.id, office.clock.now() + starts_in, "Aula")
    return run.id or 0


async def test_one_task_and_one_reminder_per_person_with_two_roles(office: Office) -> None:
    from bot.deadlines import Deadlines
    from bot.office import OfficeConfig
    from bot.texts import Texts
    from tests.support import enrol

    # The head also holds the planner's role.
    await enrol(office.members, 1001, "Drs. Kepala", "perencana")
    run_id = await to_meeting(office)
    s5 = await open_step(office, run_id)
    assert s5.number == 5
    # The head is invited: the invitation carries the step-5 task, naming both roles.
    [invitation] = await outbox(office, "meeting_invitation", member_id=office.id("kepala"))
    task = invitation.context["task"]
    assert task["roles"] == ["Kepala Badan", "Kasubbag Perencanaan / Perencana"]
    assert task["number"] == 5
    assert "Sebagai: Kepala Badan, Kasubbag Perencanaan / Perencana" in Texts().render(
        "meeting_invitation", **invitation.context
    )
    assert [a["verb"] for a in invitation.context["actions"]] == ["rsvp", "rsvp", "up", "ok"]
    # One message each: the organiser a task, the invited their invitation.
    tasks = await outbox(office, "task", run_step_id=s5.id)
    invited = [n for n in await outbox(office, "meeting_invitation") if n.context.get("task")]
    assert [n.member_id for n in tasks] == [office.id("sekretaris")]
    others = [*tasks, *invited]
    assert sorted(n.member_id for n in others) == sorted(
        office.id(k) for k in ("kepala", "sekretaris", "perencana", "perencana2")
    )
    office.clock.set(s5.due_at + timedelta(minutes=1))  # late
    await Deadlines(office.engine, OfficeConfig()).sweep()
    reminders = await outbox(office, "reminder", run_step_id=s5.id)
    assert sorted(n.member_id for n in reminders) == sorted(n.member_id for n in others)


async def test_the_meeting_step_counts_from_the_meeting(office: Office) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import pytest

    from bot.errors import StepNotOpen
    from bot.texts import Texts

    wib = ZoneInfo("Asia/Jakarta")
    e, p, clock = office.engine, office.id, office.clock
    clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=wib))  # Wednesday
    starts = datetime(2026, 11, 27, 9, 0, tzinfo=wib)  # Friday 09:00
    run_id = await to_meeting(office, starts - clock.now())
    s5 = await open_step(office, run_id)
    # 120 working minutes from the meeting's start (Friday's break is 11:30).
    assert s5.due_at == datetime(2026, 11, 27, 11, 0, tzinfo=wib)
    [invitation] = await outbox(office, "meeting_invitation", member_id=p("kepala"))
    assert invitation.context["task"]["due_at"] == s5.due_at.isoformat()

    # Thursday: the meeting has not happened, so it cannot be finished.
    clock.set(datetime(2026, 11, 26, 9, 30, tzinfo=wib))
    with pytest.raises(StepNotOpen) as refused:
        await e.steps.complete(p("kepala"), s5.id)
    assert refused.value.detail == "meeting_not_started"
    text = Texts().render(
        "errors/step_not_open", detail=refused.value.detail, **refused.value.context
    )
    assert text.strip() == (
        "⏳ Rapat baru dimulai Jumat, 27 November 2026 09:00 WIB. "
        "Tekan Selesai setelah rapat berlangsung."
    )
    assert (await open_step(office, run_id)).id == s5.id
    # No reminder before the meeting's due time either.
    from bot.deadlines import Deadlines
    from bot.office import OfficeConfig

    assert (await Deadlines(office.engine, OfficeConfig()).sweep()).reminders == 0

    clock.set(datetime(2026, 11, 27, 10, 45, tzinfo=wib))
    await e.steps.complete(p("kepala"), s5.id)
    assert (await open_step(office, run_id)).number == 6


async def test_a_step_nobody_holds_is_flagged_and_reaches_a_newcomer(office: Office) -> None:
    from bot.models import Event
    from bot.texts import Texts
    from tests.support import enrol

    e, p = office.engine, office.id
    for planner in ("perencana", "perencana2"):
        await office.members.revoke(p("admin"), p(planner))
    run = await e.runs.start(p("kepala"), "TW IV 2026")
    s2 = await open_step(office, run.id or 0)
    assert s2.number == 2
    assert await outbox(office, "task", run_step_id=s2.id) == []
    async with office.db.session() as s:
        [event] = (await s.exec(select(Event).where(Event.kind == "unstaffed"))).all()
    assert event.details["missing"] == [
        {
            "role": "perencana",
            "role_name": "Kasubbag Perencanaan / Perencana",
            "unit": None,
            "label": "Kasubbag Perencanaan / Perencana",
        }
    ]
    warnings = await outbox(office, "unstaffed", run_step_id=s2.id)
    assert sorted(n.member_id for n in warnings) == sorted([p("admin"), p("kepala")])
    text = Texts().render("unstaffed", **warnings[0].context)
    assert "Langkah 2 belum ada pelaksana" in text
    assert "<code>/undang perencana</code>" in text

    [status] = await e.queries.run_status(run.id)
    step2 = next(st for st in status.steps if st.number == 2)
    assert step2.unstaffed == ["Kasubbag Perencanaan / Perencana"]
    shown = Texts().render("status", run=status, blocked=[])
    assert "belum ada pelaksana: Kasubbag Perencanaan / Perencana" in shown

    # A planner joins: the open task is sent at once, through the outbox.
    newcomer = await enrol(office.members, 1005, "Perencana Baru", "perencana")
    [task] = await outbox(office, "task", run_step_id=s2.id)
    assert task.member_id == newcomer.id and task.context["number"] == 2
    assert [t.number for t in await e.queries.tasks(newcomer.id)] == [2]
    [status] = await e.queries.run_status(run.id)
    assert next(st for st in status.steps if st.number == 2).unstaffed == []
    # Joining again in another role sends nothing twice.
    await enrol(office.members, 1005, "Perencana Baru", "sekretaris")
    assert len(await outbox(office, "task", run_step_id=s2.id)) == 1


async def test_units_without_members_are_named_in_the_collection(office: Office) -> None:
    from bot.texts import Texts
    from tests.support import enrol

    e, p = office.engine, office.id
    await office.members.revoke(p("admin"), p("unit3"))
    run_id = await to_collection(office)
    s6 = await open_step(office, run_id)
    politik = "Bidang Politik Dalam Negeri"
    warnings = await outbox(office, "unstaffed", run_step_id=s6.id)
    # The admin, the planners who review the collection and whoever opened it.
    assert sorted(n.member_id for n in warnings) == sorted(
        [p("admin"), p("perencana"), p("perencana2")]
    )
    assert [m["unit"] for m in warnings[0].context["missing"]] == [politik]
    text = Texts().render("unstaffed", **warnings[0].context)
    assert f"<code>/undang anggota_tim {politik}</code>" in text
    assert "menutup pengumpulan untuk unit itu saja, dengan alasan" in text

    [status] = await e.queries.run_status(run_id)
    step6 = next(st for st in status.steps if st.number == 6)
    assert politik not in step6.pending_units and len(step6.pending_units) == 4
    assert step6.units_without_members == [politik]
    assert f"belum ada anggota: {politik}" in Texts().render("status", run=status, blocked=[])
    _, deliveries = await e.queries.collection(p("perencana"), s6.id)
    assert [d.unit_name for d in deliveries if not d.has_members] == [politik]
    view = Texts().render("collection", run_title="TW IV 2026", deliveries=deliveries)
    assert f"{politik}: belum ada anggota" in view
    assert "Sekretariat: belum mengirim" in view

    # A member of that unit joins and gets the step-6 task with the form.
    andi = await enrol(office.members, 2103, "Andi", "anggota_tim", politik)
    [task] = await outbox(office, "task", run_step_id=s6.id, member_id=andi.id)
    assert task.context["unit_name"] == politik
    # Andi missed step 3: the form comes with the task, as the same message.
    assert task.file_id is not None and task.context["attached"][0]["name"] == FORM.name
    assert await outbox(office, "attachment", run_step_id=s6.id, member_id=andi.id) == []


async def test_closing_summary_status_and_report_reckon_time_alike(office: Office) -> None:
    """Step 5 is held at a meeting three hours after it opened: its time
    counts from the meeting, in /status, the monev report and the closing
    message alike; a late step is listed in both."""
    import io

    import openpyxl

    from bot.report import run_report

    e, p, clock = office.engine, office.id, office.clock
    run_id = await to_step8(office)
    s8 = await open_step(office, run_id)
    await e.collection.upload(p("perencana"), s8.id, IncomingFile(b"PK", "pk.xlsx", XLSX))
    await e.steps.complete(p("perencana"), s8.id)
    await e.steps.complete(p("sekretaris"), (await open_step(office, run_id)).id)
    await e.steps.decide(p("kepala"), (await open_step(office, run_id)).id, "setuju")
    await e.steps.complete(p("kepala"), (await open_step(office, run_id)).id)
    await e.steps.complete(p("sekretaris"), (await open_step(office, run_id)).id, note="050/1/2026")
    clock.advance(hours=1)  # step 14 (25 minutes) is done 35 minutes late
    await e.steps.complete(p("perencana"), (await open_step(office, run_id)).id)
    await e.steps.complete(p("perencana"), (await open_step(office, run_id)).id)

    [status] = await e.queries.run_status(run_id)
    [s5] = [st for st in status.steps if st.number == 5]
    assert s5.used_minutes == 0 and s5.late_minutes is None  # finished as the meeting began
    [summary] = await outbox(office, "run_done", member_id=p("kepala"))
    assert summary.context["late_steps"] == [14]
    book = openpyxl.load_workbook(io.BytesIO(await run_report(e, run_id, "Kantor")))
    [used5] = [r[10] for r in book["Langkah"].iter_rows(values_only=True) if r[0] == 5]
    assert used5 == 0
    assert book["Ringkasan"]["B11"].value == "langkah 14"
    assert summary.context["used_minutes"] == book["Ringkasan"]["B10"].value
    assert summary.context["used_minutes"] == round(
        sum(st.used_minutes or 0 for st in status.steps)
    )


async def test_a_units_reminder_under_a_late_validation_is_settled_on_acceptance(
    office: Office,
) -> None:
    """A unit whose file came back is reminded under the late validation
    step; once its new file is accepted, that reminder's upload button goes."""
    from bot.deadlines import Deadlines
    from bot.office import OfficeConfig
    from bot.outbox import Outbox

    e, p, clock = office.engine, office.id, office.clock
    run_id = await to_collection(office)
    s6 = await open_step(office, run_id)
    files = {}
    for i, unit in enumerate(DEFAULT_UNITS, start=1):
        r = await e.collection.upload(
            p(f"unit{i}"), s6.id, IncomingFile(workbook(unit, i), f"u{i}.xlsx", XLSX)
        )
        files[i] = r.file.id
    await e.collection.review(p("perencana"), files[1], accept=False, note="Perbaiki")
    for i in range(2, len(DEFAULT_UNITS) + 1):
        await e.collection.review(p("perencana"), files[i], accept=True)
    s7 = await open_step(office, run_id)
    clock.set(e.calendar.add_working_minutes(s7.due_at, 60))  # an hour late, office open
    await Deadlines(e, OfficeConfig()).sweep()
    [reminder] = await outbox(office, "reminder", member_id=p("unit1"))
    assert reminder.run_step_id == s7.id  # sent under the validation step
    sender = Outbox(office.db, clock)
    await sender.begin(reminder.id)
    await sender.sent(reminder.id, 11)
    again = await e.collection.upload(
        p("unit1"), s6.id, IncomingFile(workbook("Sekretariat", 9), "v2.xlsx", XLSX)
    )
    await e.collection.review(p("perencana"), again.file.id, accept=True)
    edits = [n for n in await outbox(office, "settled") if n.edits_id == reminder.id]
    assert len(edits) == 1 and edits[0].context["kind"] == "accepted"
