"""The whole seed SOP walked at the engine level by the right roles."""

from __future__ import annotations

import json

from sqlmodel import func, select

from bot.audit import verify_chain
from bot.models import (
    Assignment,
    Attendance,
    Event,
    Notification,
    ReviewState,
    Run,
    RunState,
    RunStep,
    StepState,
    StoredFile,
)
from bot.views import IncomingFile
from tests.support import FORM, UNIT_FILES, XLSX, Office, workbook


def xlsx(path) -> IncomingFile:
    return IncomingFile(path.read_bytes(), path.name, XLSX)


async def open_step(office: Office, run_id: int) -> RunStep:
    async with office.db.session() as s:
        steps = (
            await s.exec(
                select(RunStep).where(RunStep.run_id == run_id, RunStep.state == StepState.open)
            )
        ).all()
    assert len(steps) == 1, [(r.number, r.state) for r in steps]
    return steps[0]


async def test_whole_sop_walked(office: Office) -> None:
    e, clock, p = office.engine, office.clock, office.id

    run = await e.runs.start(
        p("kepala"), "Data Kinerja Triwulan III 2026", note="Segera disusun, batas akhir Jumat."
    )
    step = await open_step(office, run.id)
    assert step.number == 2

    # Step 2: the planner makes the form.
    clock.advance(minutes=30)
    await e.collection.upload(p("perencana"), step.id, xlsx(FORM))
    await e.steps.complete(p("perencana"), step.id)

    # Step 3: the form goes to every unit member.
    step = await open_step(office, run.id)
    assert step.number == 3
    await e.steps.complete(p("perencana2"), step.id)
    async with office.db.session() as s:
        dist = (
            await s.exec(select(Notification).where(Notification.template == "distributed"))
        ).all()
    assert sorted(n.member_id for n in dist) == sorted(p(f"unit{i}") for i in range(1, 6))
    assert all(n.file_id is not None for n in dist)

    # Steps 4-5: the meeting.
    step = await open_step(office, run.id)
    assert step.number == 4
    from datetime import timedelta

    meeting = await e.steps.schedule_meeting(
        p("sekretaris"), step.id, clock.now() + timedelta(days=1), "Ruang Rapat Badan"
    )
    await e.steps.answer_meeting(p("kepala"), meeting.id, True)
    await e.steps.answer_meeting(p("unit3"), meeting.id, False)
    step = await open_step(office, run.id)
    assert step.number == 5
    clock.advance(days=1)
    await e.collection.upload(
        p("sekretaris"),
        step.id,
        IncomingFile(b"%PDF-1.4 notulen", "notulen.pdf", "application/pdf"),
    )
    await e.steps.complete(p("kepala"), step.id)

    # Step 6: every unit delivers; the fifth delivery closes the step.
    step6 = await open_step(office, run.id)
    assert step6.number == 6
    receipts = {}
    for i, (unit, name) in enumerate(UNIT_FILES.items(), start=1):
        from tests.support import DATA

        receipts[i] = await e.collection.upload(p(f"unit{i}"), step6.id, xlsx(DATA / name))
        assert receipts[i].unit_name == unit
    assert receipts[5].step_closed and not receipts[4].step_closed

    # Step 7: validation; unit 3's workbook has mistakes and goes back.
    step7 = await open_step(office, run.id)
    assert step7.number == 7
    _, deliveries = await e.queries.collection(p("perencana"), step7.id)
    assert [d.state for d in deliveries] == ["delivered"] * 5
    for i in (1, 2, 4, 5):
        await e.collection.review(p("perencana"), receipts[i].file.id, accept=True)
    await e.collection.review(
        p("perencana"),
        receipts[3].file.id,
        accept=False,
        note="Nama unit kosong; realisasi TW I-II belum diisi.",
    )
    assert (await open_step(office, run.id)).number == 7
    tasks = await e.queries.tasks(p("unit3"))
    assert [(t.number, t.state) for t in tasks] == [(6, "returned")]
    fixed = await e.collection.upload(
        p("unit3"),
        step6.id,
        IncomingFile(workbook("Bidang Politik Dalam Negeri"), "unit-3-perbaikan.xlsx", XLSX),
    )
    assert fixed.file.version == 2
    await e.collection.review(p("perencana2"), fixed.file.id, accept=True)

    # Steps 8-11 with the correction loop taken once.
    step = await open_step(office, run.id)
    assert step.number == 8
    await e.collection.upload(
        p("perencana"), step.id, IncomingFile(b"PK doc v1", "dokumen.xlsx", XLSX)
    )
    await e.steps.complete(p("perencana"), step.id)
    await e.steps.complete(p("sekretaris"), (await open_step(office, run.id)).id)
    step = await open_step(office, run.id)
    assert step.number == 10
    await e.steps.decide(p("kepala"), step.id, "koreksi", note="Capaian TW III perlu dicek ulang.")
    step = await open_step(office, run.id)
    assert step.number == 11
    await e.steps.complete(p("sekretaris"), step.id, note="Mohon diperbaiki.")
    step = await open_step(office, run.id)
    assert (step.number, step.iteration) == (8, 2)
    async with office.db.session() as s:
        task = (
            await s.exec(
                select(Notification).where(
                    Notification.run_step_id == step.id,
                    Notification.template == "task",
                    Notification.member_id == p("perencana"),
                )
            )
        ).one()
    assert [n["note"] for n in task.context["notes"]] == [
        "Capaian TW III perlu dicek ulang.",
        "Mohon diperbaiki.",
    ]
    await e.collection.upload(
        p("perencana"), step.id, IncomingFile(b"PK doc v2", "dokumen-v2.xlsx", XLSX)
    )
    await e.steps.complete(p("perencana"), step.id)
    await e.steps.complete(p("sekretaris"), (await open_step(office, run.id)).id)
    await e.steps.decide(p("kepala"), (await open_step(office, run.id)).id, "setuju")

    # Steps 12-15.
    step = await open_step(office, run.id)
    assert step.number == 12
    await e.collection.upload(
        p("kepala"), step.id, IncomingFile(b"%PDF signed", "ttd.pdf", "application/pdf")
    )
    await e.steps.complete(p("kepala"), step.id)
    step = await open_step(office, run.id)
    assert step.number == 13
    await e.steps.complete(p("sekretaris"), step.id, note="Nomor 050/123/Bakesbangpol/2026")
    await e.steps.complete(p("perencana"), (await open_step(office, run.id)).id)
    await e.steps.complete(p("perencana"), (await open_step(office, run.id)).id)

    async with office.db.session() as s:
        done = await s.get(Run, run.id)
        assert done.state == RunState.done and done.ended_at is not None
        steps = (
            await s.exec(
                select(RunStep)
                .where(RunStep.run_id == run.id)
                .order_by(RunStep.number, RunStep.iteration)
            )
        ).all()
        assert [(r.number, r.iteration) for r in steps] == (
            [(n, 1) for n in range(1, 8)]
            + [(8, 1), (8, 2), (9, 1), (9, 2), (10, 1), (10, 2)]
            + [(n, 1) for n in range(11, 16)]
        )
        for r in steps:
            assert r.opened_at and r.done_at and r.due_at, r.number
            assert r.state in (StepState.done, StepState.returned)
        assert {(r.number, r.iteration): r.state for r in steps}[(10, 1)] == StepState.returned
        assert steps[0].note == "Segera disusun, batas akhir Jumat."
        every = (await s.exec(select(StoredFile).where(StoredFile.run_id == run.id))).all()
        # The bot's drafts: the compiled workbook at each opening of step 8,
        # the cover letter (step 13), the archive.
        drafts = [f for f in every if f.kind == "draft"]
        assert [f.original_name.rsplit(".", 1)[1] for f in drafts] == [
            "xlsx",
            "xlsx",
            "docx",
            "zip",
        ]
        assert all(f.uploader_id is None for f in drafts)
        files = [f for f in every if f.kind != "draft"]
        assert len(files) == 1 + 1 + 6 + 2 + 1
        unit3 = [f for f in files if f.original_name.startswith("unit-3")]
        assert [f.review_state for f in sorted(unit3, key=lambda f: f.version)] == [
            ReviewState.returned,
            ReviewState.accepted,
        ]
        for f in files:
            assert office.storage.path(f.storage_path).exists()
            assert f.original_name not in f.storage_path
        kinds = [
            ev.kind
            for ev in (
                await s.exec(select(Event).where(Event.run_id == run.id).order_by(Event.seq))
            ).all()
        ]
        assert kinds[0] == "run_started" and kinds[-1] == "run_done"
        for kind in (
            "file_received",
            "file_accepted",
            "file_returned",
            "decision",
            "meeting_scheduled",
            "distributed",
            "attendance",
        ):
            assert kind in kinds, kind
        attendance = (await s.exec(select(func.count()).select_from(Attendance))).one()
        assert attendance == 2
        owing = (await s.exec(select(Assignment).where(Assignment.state == "open"))).all()
        assert owing == []
        summary = (
            await s.exec(select(Notification).where(Notification.template == "run_done"))
        ).all()
        assert {n.member_id for n in summary} >= {
            p("kepala"),
            p("sekretaris"),
            p("perencana"),
        }
        # A unit's members were told when their file was accepted; the
        # summary of the head's signed document is not theirs.
        assert p("unit1") not in {n.member_id for n in summary}
        verification = await verify_chain(s)
    assert verification.ok, verification.reason
    assert verification.checked >= len(kinds)

    # The monev report of the run.
    import io

    import openpyxl

    from bot.report import run_report

    book = openpyxl.load_workbook(io.BytesIO(await run_report(e, run.id, "Bakesbangpol Uji")))
    summary = {row[0]: row[1] for row in book["Ringkasan"].iter_rows(min_row=3, values_only=True)}
    assert summary["Kegiatan"] == "Data Kinerja Triwulan III 2026"
    assert summary["Status"] == "selesai" and summary["Rantai log peristiwa"] == "utuh"
    assert summary["Waktu standar total (menit kerja)"] == 785
    assert summary["Berkas tercatat"] == len(every)  # the drafts too
    steps_rows = list(book["Langkah"].iter_rows(min_row=2, values_only=True))
    assert len(steps_rows) == len(steps)
    assert [r[0] for r in steps_rows[:3]] == [1, 2, 3]
    assert all(r[10] is not None for r in steps_rows)  # working minutes used, per step
    assert len(list(book["Berkas"].iter_rows(min_row=2))) == len(every)
    assert len(list(book["Peristiwa"].iter_rows(min_row=2))) == len(kinds)
    # People read it: Indonesian words, not the engine's codes.
    outcomes = {r[12] for r in steps_rows}
    assert outcomes >= {
        "selesai",
        "undangan rapat dikirim",
        "semua berkas diterima",
        "Setujui",
        "Kembalikan dengan catatan",
    }
    assert not outcomes & {"valid", "diundang", "lengkap", "setuju", "koreksi"}
    files_rows = list(book["Berkas"].iter_rows(min_row=2, values_only=True))
    # The form (step 2) and the compiled documents are never reviewed; the units' files are.
    assert {r[10] for r in files_rows if r[1] in (2, 8)} == {"tanpa pemeriksaan"}
    assert {r[10] for r in files_rows if r[1] == 6} <= {"diterima", "dikembalikan"}
    assert {r[5] for r in book["Berkas"].iter_rows(min_row=2, values_only=True)} <= {
        "dokumen",
        "foto",
        "draf dari bot",
    }
    events_rows = list(book["Peristiwa"].iter_rows(min_row=2, values_only=True))
    assert events_rows[0][2] == "kegiatan dimulai"
    # The details are data, with their times in the office's zone like the rest.
    opened = next(json.loads(r[4]) for r in events_rows if r[2] == "langkah 2 dibuka")
    assert opened["due_at"].endswith("+07:00"), opened
    assert not any("+00:00" in (r[4] or "") for r in events_rows)
    assert not any(r[2] in kinds for r in events_rows)
