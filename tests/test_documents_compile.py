"""Step 8's compiled workbook: built from the accepted unit workbooks when
the collection closes, offered with the planner's task, used by a button."""

from __future__ import annotations

from numbers import Number
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlmodel import col, select

from bot.botapi import Person as FakeUser
from bot.documents.compile import recap_rows
from bot.errors import FilesRequired
from bot.models import Event, Notification, RunStep, StepState, StoredFile
from bot.sop import SopRegistry
from bot.views import IncomingFile
from tests.fakes.world import World, running_bot
from tests.support import DATA, UNIT_FILES, XLSX, Office, to_collection

PERBAIKAN = DATA / "unit-3-bidang-politik-dalam-negeri-perbaikan.xlsx"
# The five units' clean copies (unit 3's corrected one).
CLEAN = {unit: (PERBAIKAN if "salah" in name else DATA / name) for unit, name in UNIT_FILES.items()}
CHECK = SopRegistry.load().get("pengumpulan-data-kinerja").step("kumpul_data").workbook
assert CHECK is not None


async def open_step(office: Office, run_id: int) -> RunStep:
    async with office.db.session() as s:
        [rs] = (
            await s.exec(
                select(RunStep).where(RunStep.run_id == run_id, RunStep.state == StepState.open)
            )
        ).all()
    return rs


async def draft_of(office: Office, rs: RunStep) -> StoredFile | None:
    async with office.db.session() as s:
        return (
            await s.exec(
                select(StoredFile).where(
                    StoredFile.run_step_id == rs.id, StoredFile.kind == "draft"
                )
            )
        ).first()


async def deliver(office: Office, run_id: int, files: dict[int, IncomingFile]) -> RunStep:
    """Units (by number) deliver; the planner accepts each; the rest are
    closed with a reason. Returns the step that opened next (8)."""
    e, p = office.engine, office.id
    step6 = await open_step(office, run_id)
    assert step6.number == 6
    for i, incoming in files.items():
        receipt = await e.collection.upload(p(f"unit{i}"), step6.id or 0, incoming)
        await e.collection.review(p("perencana"), receipt.file.id or 0, accept=True)
    if len(files) < 5:
        await e.collection.close(p("perencana"), step6.id or 0, "Kepala bidang sedang dinas luar")
    return await open_step(office, run_id)


def unit_sums() -> dict[str, float]:
    """Each numeric column's sum over the five units' indicator rows."""
    sums: dict[str, float] = {}
    for path in CLEAN.values():
        sheet = openpyxl.load_workbook(path, data_only=True).active
        assert sheet is not None
        for row in range(CHECK.first_row, CHECK.last_row + 1):
            for c in CHECK.numeric_columns:
                value = sheet[f"{c}{row}"].value
                if isinstance(value, Number):
                    sums[c] = sums.get(c, 0) + value  # type: ignore[operator]
    return sums


def xlsx(path: Path) -> IncomingFile:
    return IncomingFile(path.read_bytes(), path.name, XLSX)


async def test_compiled_from_the_five_sample_units(office: Office) -> None:
    run_id = await to_collection(office)
    step8 = await deliver(office, run_id, {i: xlsx(p) for i, p in enumerate(CLEAN.values(), 1)})
    assert step8.number == 8
    draft = await draft_of(office, step8)
    assert draft is not None and draft.uploader_id is None
    path = office.storage.path(draft.storage_path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Rekap", *[u[:31] for u in CLEAN], "Kiriman"]
    # Each unit's sheet is its form: values and formats, no formula.
    source = openpyxl.load_workbook(CLEAN["Sekretariat"]).active
    sheet = book["Sekretariat"]
    assert source is not None
    for row in source.iter_rows(min_row=1, max_row=7):
        for cell in row:
            copied = sheet[cell.coordinate]
            if isinstance(cell.value, str) and cell.value.startswith("="):
                assert copied.value is None  # never computed by Excel: no stored value
            else:
                assert copied.value == cell.value, cell.coordinate
            for look in ("font", "fill", "border", "alignment", "number_format"):
                assert repr(getattr(copied, look)) == repr(getattr(cell, look)), look
    assert sheet.column_dimensions["C"].width == source.column_dimensions["C"].width
    assert not any(
        c.data_type == "f" for ws in book.worksheets for row in ws.iter_rows() for c in row
    )
    # Rekap: one row per indicator, and its columns add up to the units' cells.
    rows = recap_rows(path)
    assert len(rows) == 10
    first = 3  # No, Indikator Kinerja, Satuan, then the numeric columns
    for i, c in enumerate(CHECK.numeric_columns):
        total = sum(r[first + i] or 0 for r in rows)
        assert total == pytest.approx(unit_sums().get(c, 0)), c
    assert unit_sums()["E"] > 0 and unit_sums()["H"] > 0
    # The event log records the draft with its digest.
    async with office.db.session() as s:
        made = (await s.exec(select(Event).where(Event.kind == "draft_made"))).one()
    assert made.details["sha256"] == draft.sha256 and len(made.details["units"]) == 5

    # Before the planner chooses, the draft is not the step's document.
    with pytest.raises(FilesRequired):
        await office.engine.steps.complete(office.id("perencana"), step8.id or 0)


async def test_a_unit_closed_and_a_pdf_are_listed(office: Office) -> None:
    run_id = await to_collection(office)
    files = {i: xlsx(p) for i, p in enumerate(list(CLEAN.values())[:3], 1)}
    files[4] = IncomingFile(b"%PDF-1.4 data kinerja", "data-kinerja.pdf", "application/pdf")
    step8 = await deliver(office, run_id, files)  # unit 5 closed
    draft = await draft_of(office, step8)
    assert draft is not None
    book = openpyxl.load_workbook(office.storage.path(draft.storage_path))
    assert len(book.sheetnames) == 5  # Rekap, three units, Kiriman
    rows = [r for r in book["Kiriman"].iter_rows(min_row=4, values_only=True)]
    by_unit = {r[1]: r for r in rows}
    units = list(CLEAN)
    assert len(rows) == 5
    pdf = by_unit[units[3]]
    assert "bukan buku kerja" in pdf[2] and pdf[4] == "data-kinerja.pdf"
    assert pdf[3] == "Staf 4" and len(pdf[7]) == 64
    closed = by_unit[units[4]]
    assert closed[2] == "ditutup tanpa kiriman"
    assert "dinas luar" in closed[8] and "Perencana Satu" in closed[8]
    note = book["Rekap"]["A2"].value
    assert units[3] in note and units[4] in note


async def test_the_planner_uses_the_draft(office: Office) -> None:
    e, p = office.engine, office.id
    run_id = await to_collection(office)
    step8 = await deliver(office, run_id, {i: xlsx(q) for i, q in enumerate(CLEAN.values(), 1)})
    draft = await draft_of(office, step8)
    assert draft is not None
    async with office.db.session() as s:
        tasks = (
            await s.exec(
                select(Notification).where(
                    Notification.run_step_id == step8.id, Notification.template == "task"
                )
            )
        ).all()
    # Each planner's task carries the draft (as its document) and its button.
    assert tasks and all(n.file_id == draft.id for n in tasks)
    assert all(n.context["actions"][0]["verb"] == "use" for n in tasks)
    await e.steps.use_draft(p("perencana"), step8.id or 0, draft.id or 0)
    step9 = await open_step(office, run_id)
    assert step9.number == 9
    async with office.db.session() as s:
        used = (
            await s.exec(
                select(StoredFile).where(
                    StoredFile.run_step_id == step8.id, col(StoredFile.kind) != "draft"
                )
            )
        ).one()
        attached = (
            await s.exec(
                select(Notification).where(
                    Notification.run_step_id == step9.id, Notification.template == "task"
                )
            )
        ).all()
    assert used.uploader_id == p("perencana") and used.sha256 == draft.sha256
    assert [n.file_id for n in attached] == [used.id]


async def at_step_8(world: World) -> tuple[FakeUser, FakeUser, dict[str, Any]]:
    """The five clean units' files accepted: step 8 opens with the bot's
    compiled workbook; the planner, the sekretaris and the step-8 task."""
    await world.join("kepala", 1001, "Kepala", "kepala_badan")
    sekretaris = await world.join("sekretaris", 1002, "Sekretaris", "sekretaris")
    rina = await world.join("rina", 1003, "Rina", "perencana")
    units = {
        unit: await world.join(f"unit{i}", 2000 + i, f"Staf {i}", "anggota_tim", unit)
        for i, unit in enumerate(CLEAN, 1)
    }
    await world.to_collection()
    e = world.services.engine
    rina_id = await world.member_id(rina)
    for unit, person in units.items():
        [task] = await e.queries.tasks(await world.member_id(person))
        receipt = await e.collection.upload(
            await world.member_id(person), task.run_step_id, xlsx(CLEAN[unit])
        )
        await e.collection.review(rina_id, receipt.file.id or 0, accept=True)
    await world.idle()
    [task8] = [m for m in rina.find("Langkah 8") if m.get("reply_markup")]
    return rina, sekretaris, task8


async def test_press_gunakan_draf_in_chat(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        rina, sekretaris, task8 = await at_step_8(world)
        assert task8["document"]["file_name"].startswith("rekap-data-kinerja-")
        assert "Draf dari bot terlampir" in task8["caption"]
        labels = [b["text"] for row in task8["reply_markup"]["inline_keyboard"] for b in row]
        assert labels[0] == "📄 Gunakan draf ini" and "✅ Selesai" in labels
        await rina.press(task8, "Gunakan draf ini")
        await world.idle()
        task9 = sekretaris.latest("Langkah 9")
        assert task9["document"]["file_name"] == task8["document"]["file_name"]
        assert "Diselesaikan" in (rina.latest("Langkah 8").get("caption") or "")
        assert world.server.errors() == []


async def test_a_tugas_line_offers_the_draft_too(tmp_path: Path) -> None:
    """/tugas shows a drafted step with the draft named and its button, as
    the task message does; pressing it there uses the draft, and every
    message of the step then loses its buttons."""
    async with running_bot(tmp_path) as world:
        rina, sekretaris, task8 = await at_step_8(world)
        before = len(rina.messages)
        await rina.send_command("/tugas")
        await world.idle()
        [line] = [m for m in rina.messages[before:] if "Langkah 8:" in m.get("text", "")]
        assert f"Draf dari bot: {task8['document']['file_name']}" in line["text"]
        labels = [b["text"] for row in line["reply_markup"]["inline_keyboard"] for b in row]
        assert labels[0] == "📄 Gunakan draf ini" and "✅ Selesai" in labels
        await rina.press(line, "Gunakan draf ini")
        await world.idle()
        task9 = sekretaris.latest("Langkah 9")
        assert task9["document"]["file_name"] == task8["document"]["file_name"]
        shown = world.server.shown_markups()
        assert shown[(rina.id, line["message_id"])] is None
        assert shown[(rina.id, task8["message_id"])] is None
        assert world.server.errors() == []
