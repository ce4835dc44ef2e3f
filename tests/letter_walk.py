"""A run brought to its cover letter (step 13) through the engine, for the
letter and monitoring tests; what happens on the way is the caller's to
choose (lateness, a returned file, a closed unit, a correction)."""

from __future__ import annotations

from datetime import timedelta

from bot.models import RunStep, StepState
from bot.views import IncomingFile
from tests.support import DATA, UNIT_FILES, XLSX, Office, to_collection, workbook

PDF = "application/pdf"


async def open_step(office: Office, run_id: int) -> RunStep:
    from sqlmodel import select

    async with office.db.session() as s:
        [rs] = (
            await s.exec(
                select(RunStep).where(RunStep.run_id == run_id, RunStep.state == StepState.open)
            )
        ).all()
    return rs


async def to_letter(
    office: Office,
    title: str = "TW IV 2026",
    *,
    late_minutes: int = 0,
    return_unit: bool = False,
    close_unit: bool = False,
    correction: bool = False,
) -> int:
    """From the start to step 13 open; returns the run id. `late_minutes`
    is spent on step 8 before it is finished (its standard is 15 minutes)."""
    e, p = office.engine, office.id
    # Each run starts on the next working morning, 08:00 (its meeting at 11:00).
    clock = office.clock
    morning = e.calendar.next_opening(clock.now() + timedelta(hours=12))
    clock.set(morning.replace(minute=0) + timedelta(hours=1))
    run_id = await to_collection(office, title)
    step6 = await open_step(office, run_id)
    names = list(UNIT_FILES.values())
    delivered = names[:-1] if close_unit else names
    receipts = []
    for i, name in enumerate(delivered, start=1):
        receipts.append(
            await e.collection.upload(
                p(f"unit{i}"),
                step6.id or 0,
                IncomingFile((DATA / name).read_bytes(), name, XLSX),
            )
        )
    if close_unit:
        await e.collection.close(
            p("perencana"), step6.id or 0, "Kepala bidang sedang dinas luar", unit_id=None
        )
    for i, receipt in enumerate(receipts, start=1):
        if return_unit and i == 3:
            await e.collection.review(
                p("perencana"), receipt.file.id or 0, accept=False, note="TW kosong"
            )
            fixed = await e.collection.upload(
                p("unit3"),
                step6.id or 0,
                IncomingFile(workbook("Bidang Politik Dalam Negeri"), "u3.xlsx", XLSX),
            )
            await e.collection.review(p("perencana"), fixed.file.id or 0, accept=True)
        else:
            await e.collection.review(p("perencana"), receipt.file.id or 0, accept=True)
    for round_ in range(2 if correction else 1):
        step8 = await open_step(office, run_id)
        assert step8.number == 8, step8.number
        await e.collection.upload(
            p("perencana"),
            step8.id or 0,
            IncomingFile(b"PK compiled %d" % round_, "data-kinerja.xlsx", XLSX),
        )
        if late_minutes and round_ == 0:
            office.clock.advance(minutes=late_minutes)
        await e.steps.complete(p("perencana"), step8.id or 0)
        await e.steps.complete(p("sekretaris"), (await open_step(office, run_id)).id or 0)
        step10 = await open_step(office, run_id)
        if correction and round_ == 0:
            await e.steps.decide(p("kepala"), step10.id or 0, "koreksi", note="Cek TW IV")
            await e.steps.complete(p("sekretaris"), (await open_step(office, run_id)).id or 0)
        else:
            await e.steps.decide(p("kepala"), step10.id or 0, "setuju")
    step12 = await open_step(office, run_id)
    await e.collection.upload(
        p("kepala"), step12.id or 0, IncomingFile(b"%PDF signed", "ditandatangani.pdf", PDF)
    )
    await e.steps.complete(p("kepala"), step12.id or 0)
    step13 = await open_step(office, run_id)
    assert step13.number == 13
    return run_id


async def use_letter(office: Office, run_id: int) -> None:
    """The sekretaris uses the bot's draft letter (Pakai surat ini) at the
    open step 13, as the task's button does."""
    from bot.run.drafts import draft_of

    rs = await open_step(office, run_id)
    async with office.db.session() as s:
        letter = await draft_of(s, rs)
    assert letter is not None, "step 13 has no draft letter"
    await office.engine.steps.use_draft(office.id("sekretaris"), rs.id or 0, letter.id or 0)


async def finish(office: Office, run_id: int) -> None:
    """Steps 14 and 15 (the planner's), after step 13 is done."""
    for _ in range(2):
        rs = await open_step(office, run_id)
        await office.engine.steps.complete(office.id("perencana"), rs.id or 0)
