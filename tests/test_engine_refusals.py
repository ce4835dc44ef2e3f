"""Refusals: wrong role, wrong unit, step not open, run cancelled, twice."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from bot.errors import (
    AlreadyDone,
    Delegated,
    DelegateRefused,
    FileRejected,
    FilesRequired,
    InvalidInput,
    NotAllowed,
    NotEnrolled,
    NoteRequired,
    RunClosed,
    StepNotOpen,
    WrongUnit,
)
from bot.models import Event, Notification, RunStep, StepState
from bot.views import IncomingFile
from tests.support import FORM, XLSX, Office, to_collection, workbook


async def snapshot(office: Office) -> tuple[int, int, list[tuple[int, str]]]:
    """Counts that must not move when a command is refused."""
    async with office.db.session() as s:
        events = (await s.exec(select(func.count()).select_from(Event))).one()
        outbox = (await s.exec(select(func.count()).select_from(Notification))).one()
        steps = [
            (r.id, r.state.value)
            for r in (await s.exec(select(RunStep).order_by(RunStep.id))).all()
        ]
    return events, outbox, steps


async def step_of(office: Office, run_id: int, number: int) -> RunStep:
    async with office.db.session() as s:
        return (
            await s.exec(
                select(RunStep)
                .where(RunStep.run_id == run_id, RunStep.number == number)
                .order_by(RunStep.iteration.desc())
            )
        ).first()


async def test_wrong_role_and_not_enrolled(office: Office) -> None:
    e, p = office.engine, office.id
    with pytest.raises(NotAllowed):
        await e.runs.start(p("unit1"), "Tidak boleh")
    run = await e.runs.start(p("kepala"), "TW I")
    s2 = await step_of(office, run.id, 2)
    await office.members.revoke(p("admin"), p("perencana2"))
    before = await snapshot(office)
    with pytest.raises(NotAllowed):
        await e.steps.complete(p("sekretaris"), s2.id)
    with pytest.raises(NotAllowed):
        await e.collection.upload(p("unit1"), s2.id, IncomingFile(b"x", "a.xlsx", XLSX))
    with pytest.raises(NotEnrolled):
        await e.steps.complete(987654, s2.id)
    with pytest.raises(NotEnrolled):
        await e.steps.complete(p("perencana2"), s2.id)
    assert await snapshot(office) == before


async def test_step_not_open_and_twice(office: Office) -> None:
    e, p = office.engine, office.id
    run = await e.runs.start(p("kepala"), "TW II")
    s2, s3 = await step_of(office, run.id, 2), await step_of(office, run.id, 3)
    before = await snapshot(office)
    with pytest.raises(StepNotOpen):
        await e.steps.complete(p("perencana"), s3.id)
    with pytest.raises(FilesRequired):
        await e.steps.complete(p("perencana"), s2.id)
    assert await snapshot(office) == before
    await e.collection.upload(
        p("perencana"), s2.id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
    )
    await e.steps.complete(p("perencana"), s2.id)
    after_once = await snapshot(office)
    with pytest.raises(AlreadyDone):
        await e.steps.complete(p("perencana"), s2.id)
    with pytest.raises(AlreadyDone):
        await e.steps.complete(p("perencana2"), s2.id)
    assert await snapshot(office) == after_once


async def test_wrong_unit_files_and_double_review(office: Office) -> None:
    e, p = office.engine, office.id
    run_id = await to_collection(office)
    s6 = await step_of(office, run_id, 6)
    assert s6.state == StepState.open
    # A unit member can only deliver for their own unit.
    from bot.models import Unit

    async with office.db.session() as s:
        other = (await s.exec(select(Unit).where(Unit.name == "Sekretariat"))).one()
    before = await snapshot(office)
    with pytest.raises(WrongUnit):
        await e.collection.upload(
            p("unit2"), s6.id, IncomingFile(b"PK", "x.xlsx", XLSX), unit_id=other.id
        )
    for bad, reason in (
        (IncomingFile(b"", "x.xlsx", XLSX), "empty"),
        (IncomingFile(b"MZ", "virus.exe", "application/octet-stream"), "type"),
    ):
        with pytest.raises(FileRejected) as info:
            await e.collection.upload(p("unit1"), s6.id, bad)
        assert info.value.detail == reason
    e.kit.max_file_bytes = 10
    with pytest.raises(FileRejected) as info:
        await e.collection.upload(
            p("unit1"), s6.id, IncomingFile(b"x" * 11, "big.pdf", "application/pdf")
        )
    assert info.value.detail == "too_big"
    e.kit.max_file_bytes = None
    assert await snapshot(office) == before
    assert list(office.storage.root.rglob("*.pdf")) == []

    receipt = await e.collection.upload(
        p("unit1"), s6.id, IncomingFile(workbook(seed=1), "u1.xlsx", XLSX)
    )
    with pytest.raises(NotAllowed):
        await e.collection.review(p("unit2"), receipt.file.id, accept=True)
    with pytest.raises(NoteRequired):
        await e.collection.review(p("perencana"), receipt.file.id, accept=False, note="  ")
    await e.collection.review(p("perencana"), receipt.file.id, accept=True)
    snap = await snapshot(office)
    with pytest.raises(AlreadyDone):
        await e.collection.review(p("perencana2"), receipt.file.id, accept=True)
    with pytest.raises(AlreadyDone):
        await e.collection.upload(
            p("unit1"), s6.id, IncomingFile(workbook(seed=2), "u1b.xlsx", XLSX)
        )
    assert await snapshot(office) == snap


async def test_new_upload_before_review_is_a_new_version(office: Office) -> None:
    e, p = office.engine, office.id
    run_id = await to_collection(office)
    s6 = await step_of(office, run_id, 6)
    first = await e.collection.upload(
        p("unit2"), s6.id, IncomingFile(workbook(seed=1), "a.xlsx", XLSX)
    )
    second = await e.collection.upload(
        p("unit2"), s6.id, IncomingFile(workbook(seed=2), "a.xlsx", XLSX)
    )
    assert (first.file.version, second.file.version) == (1, 2)
    old = await e.queries.file(first.file.id)
    assert old.review_state.value == "superseded"
    assert office.storage.read(old.storage_path) == workbook(seed=1)
    with pytest.raises(AlreadyDone):
        await e.collection.review(p("perencana"), first.file.id, accept=True)
    # An album: pages share one version and are reviewed together.
    a = await e.collection.upload(
        p("unit4"),
        s6.id,
        IncomingFile(b"\xff\xd8p1", "foto1.jpg", "image/jpeg", kind="photo", batch="album-1"),
    )
    b = await e.collection.upload(
        p("unit4"),
        s6.id,
        IncomingFile(b"\xff\xd8p2", "foto2.jpg", "image/jpeg", kind="photo", batch="album-1"),
    )
    assert a.file.version == b.file.version == 1
    await e.collection.review(p("perencana"), b.file.id, accept=False, note="Halaman 3 tidak ada")
    assert (await e.queries.file(a.file.id)).review_state.value == "returned"


async def test_cancelled_run_refuses_everything(office: Office) -> None:
    e, p = office.engine, office.id
    run = await e.runs.start(p("kepala"), "TW III")
    s2 = await step_of(office, run.id, 2)
    with pytest.raises(NotAllowed):
        await e.runs.cancel(p("perencana"), run.id, "salah")
    with pytest.raises(NoteRequired):
        await e.runs.cancel(p("kepala"), run.id, "")
    await e.runs.cancel(p("kepala"), run.id, "Salah periode")
    before = await snapshot(office)
    with pytest.raises(RunClosed):
        await e.collection.upload(p("perencana"), s2.id, IncomingFile(b"PK", "a.xlsx", XLSX))
    with pytest.raises(RunClosed):
        await e.steps.complete(p("perencana"), s2.id)
    with pytest.raises(RunClosed):
        await e.runs.cancel(p("kepala"), run.id, "lagi")
    assert await snapshot(office) == before
    assert await e.queries.tasks(p("perencana")) == []


async def test_decision_needs_note_and_valid_outcome(office: Office) -> None:
    e, p = office.engine, office.id
    run = await e.runs.start(p("kepala"), "TW I")
    s2 = await step_of(office, run.id, 2)
    with pytest.raises(InvalidInput):
        await e.steps.decide(p("perencana"), s2.id, "setuju")
    with pytest.raises(InvalidInput) as info:
        await e.runs.start(p("kepala"), "   ")
    assert info.value.detail == "title_missing"


async def test_reassign_records_both_names(office: Office) -> None:
    e, p = office.engine, office.id
    run = await e.runs.start(p("kepala"), "TW I")
    s2 = await step_of(office, run.id, 2)
    tasks = await e.queries.tasks(p("perencana"))
    assert [t.number for t in tasks] == [2]
    with pytest.raises(NotAllowed):
        await e.delegation.reassign(p("unit1"), tasks[0].assignment_id, p("unit2"))
    # Only a colleague who could hold it: not the head, not a unit member.
    for outsider in ("kepala", "unit1", "admin"):
        with pytest.raises(DelegateRefused):
            await e.delegation.reassign(p("perencana"), tasks[0].assignment_id, p(outsider))
    assert [
        c.member_id for c in await e.delegation.candidates(p("perencana"), tasks[0].assignment_id)
    ] == [p("perencana2")]
    await e.delegation.reassign(p("perencana"), tasks[0].assignment_id, p("perencana2"))
    assert await e.queries.tasks(p("perencana")) == []
    assert [t.number for t in await e.queries.tasks(p("perencana2"))] == [2]
    with pytest.raises(Delegated) as handed:
        await e.collection.upload(p("perencana"), s2.id, IncomingFile(b"PK", "a.xlsx", XLSX))
    assert handed.value.context["to"] == "Perencana Dua" and handed.value.context["by_you"]
    async with office.db.session() as s:
        ev = (await s.exec(select(Event).where(Event.kind == "reassigned"))).one()
    assert ev.details["by"] == "Perencana Satu" and ev.details["to_member"] == "Perencana Dua"
    # Who held it before, not the one it goes to.
    assert ev.details["from_members"] == ["Perencana Satu"]


async def test_collection_closed_with_a_reason(office: Office) -> None:
    e, p = office.engine, office.id
    run_id = await to_collection(office)
    s6 = await step_of(office, run_id, 6)
    for i in (1, 2, 3):
        await e.collection.upload(
            p(f"unit{i}"), s6.id, IncomingFile(workbook(seed=i), f"u{i}.xlsx", XLSX)
        )
    with pytest.raises(NotAllowed):
        await e.collection.close(p("unit1"), s6.id, "tidak sempat")
    with pytest.raises(NoteRequired):
        await e.collection.close(p("perencana"), s6.id, " ")
    await e.collection.close(p("perencana"), s6.id, "Bidang 4 dan 5 sedang dinas luar")
    s7 = await step_of(office, run_id, 7)
    assert s7.state == StepState.open
    _, deliveries = await e.queries.collection(p("perencana"), s7.id)
    assert [d.state for d in deliveries] == ["delivered"] * 3 + ["closed"] * 2
    async with office.db.session() as s:
        ev = (await s.exec(select(Event).where(Event.kind == "step_closed"))).one()
        closed6 = await s.get(RunStep, s6.id)
    assert ev.details["pending_units"] == [
        "Bidang Ketahanan Ekonomi, Sosial, Budaya dan Agama",
        "Bidang Kewaspadaan Nasional dan Penanganan Konflik",
    ]
    assert (closed6.outcome, closed6.note) == ("ditutup", "Bidang 4 dan 5 sedang dinas luar")
    with pytest.raises(StepNotOpen):
        await e.collection.upload(p("unit4"), s6.id, IncomingFile(b"PK", "late.xlsx", XLSX))


async def test_two_runs_of_different_sops_at_once(office: Office) -> None:
    from bot.sop import parse_sop
    from tests.test_second_sop import CUTI

    office.engine.kit.sops.add(parse_sop(CUTI))
    e, p = office.engine, office.id
    first = await e.runs.start(p("kepala"), "TW III 2026")
    second = await e.runs.start(p("admin"), "TW IV 2026")
    third = await e.runs.start(p("admin"), "Cuti Desember", sop_key="permohonan-cuti")
    tasks = await e.queries.tasks(p("perencana"))
    assert [t.run_id for t in tasks] == [first.id]
    statuses = await e.queries.run_status()
    assert [(r.run_id, r.sop_name) for r in statuses] == [
        (first.id, "Mekanisme Pengumpulan Data Kinerja"),
        (second.id, "Mekanisme Pengumpulan Data Kinerja"),
        (third.id, "Permohonan Cuti Pegawai"),
    ]
    # The admin started the second run: step 1 waits for the head.
    assert [t.number for t in await e.queries.tasks(p("kepala"))] == [1]


async def test_an_upload_refused_in_its_transaction_leaves_no_file(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is made before the write transaction (so other writers never
    wait for it); when the transaction then fails, the copy is deleted."""
    e, p = office.engine, office.id
    run_id = await to_collection(office)
    s6 = await step_of(office, run_id, 6)
    files_before = sorted(office.storage.root.rglob("*"))

    async def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("database went away mid-upload")

    monkeypatch.setattr(e.kit, "event", broken)
    with pytest.raises(RuntimeError):
        await e.collection.upload(
            p("unit1"), s6.id, IncomingFile(workbook(seed=3), "u1.xlsx", XLSX)
        )
    monkeypatch.undo()
    assert sorted(office.storage.root.rglob("*")) == files_before
    # A refusal before any work (the step is not this member's) writes nothing either.
    with pytest.raises(NotAllowed):
        await e.collection.upload(
            p("kepala"), s6.id, IncomingFile(workbook(seed=4), "k.xlsx", XLSX)
        )
    assert sorted(office.storage.root.rglob("*")) == files_before
