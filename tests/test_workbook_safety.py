"""Units' workbooks are read safely: a zip bomb, too many cells and macros
are refused before anything parses them, links to other files are dropped,
and each gets a clear Indonesian reply (engine and chat)."""

from __future__ import annotations

from pathlib import Path

import openpyxl.xml
import pytest
from sqlmodel import func, select

from bot.errors import FileRejected
from bot.models import Event, StoredFile
from bot.sop import SopRegistry
from bot.sop.schema import WorkbookCheck
from bot.texts import Texts
from bot.views import IncomingFile
from bot.workbook import (
    LIMITS,
    BrokenWorkbook,
    Limits,
    UnsafeWorkbook,
    inspect_workbook,
    open_workbook,
    screen,
)
from tests import unsafe
from tests.fakes.world import running_bot
from tests.support import XLSX, Office, to_collection
from tests.test_bot_bad_input import state
from tests.test_bot_bad_input import to_collection as chat_to_collection


@pytest.fixture
def check() -> WorkbookCheck:
    found = SopRegistry.load().get("pengumpulan-data-kinerja").step("kumpul_data").workbook
    assert found is not None
    return found


def test_xml_is_parsed_through_defusedxml() -> None:
    assert openpyxl.xml.DEFUSEDXML is True


def test_entity_bomb_inside_a_sheet_is_broken(check: WorkbookCheck) -> None:
    """A billion-laughs sheet passes the size screen (it is small) and is
    stopped by defusedxml instead of expanding."""
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row>'
        b"</sheetData></worksheet>"
    )
    data = unsafe._rebuild(
        lambda name, old: laughs if name == "xl/worksheets/sheet1.xml" else old, {}
    )
    with pytest.raises(BrokenWorkbook):
        inspect_workbook(data, check)


def test_zip_bomb_refused_from_the_directory(check: WorkbookCheck) -> None:
    bomb = unsafe.zip_bomb(60)
    assert len(bomb) < 200_000  # small on the wire
    with pytest.raises(UnsafeWorkbook) as info:
        inspect_workbook(bomb, check)
    assert (info.value.reason, info.value.limit) == ("unpacked", 50)
    # Under the limit it is read as any workbook (the blank sheet is extra).
    assert screen(unsafe.zip_bomb(2)).unpacked_bytes > 2 * 1024 * 1024


def test_cell_limit(check: WorkbookCheck) -> None:
    data = unsafe.many_cells(1_000)
    assert screen(data).cells == 1_000 + screen(unsafe.SAMPLE).cells
    with pytest.raises(UnsafeWorkbook) as info:
        screen(data, limits=Limits(cells=900))
    assert (info.value.reason, info.value.limit) == ("cells", 900)
    assert LIMITS.cells >= 100_000  # a real form is far below


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (lambda: unsafe.SAMPLE.read_bytes(), "formulir.xlsm"),
        (unsafe.with_vba_project, "formulir.xlsx"),
        (unsafe.with_macro_content_type, "formulir.xlsx"),
    ],
)
def test_macros_refused(check: WorkbookCheck, data: object, name: str) -> None:
    assert callable(data)
    with pytest.raises(UnsafeWorkbook) as info:
        inspect_workbook(data(), check, name=name)
    assert info.value.reason == "macro"


def test_external_link_dropped_and_named(check: WorkbookCheck) -> None:
    data = unsafe.with_external_link()
    findings = inspect_workbook(data, check, "Sekretariat")
    assert findings == [{"code": "external_links", "count": 1}]
    with open_workbook(data, read_only=False) as (book, screened):
        assert screened.external_links == 1
        assert book._external_links == []  # noqa: SLF001  (openpyxl keeps none)
        # The formula is not evaluated: the value Excel stored is read.
        assert book.active["L6"].value == 999
    text = Texts().render("workbook_findings", checks=findings)
    assert "tautannya diabaikan" in text


async def test_engine_refuses_and_records_nothing(office: Office) -> None:
    e, p = office.engine, office.id
    await to_collection(office)
    [task] = await e.queries.tasks(p("unit1"))
    async with office.db.session() as s:
        before = (
            (await s.exec(select(func.count()).select_from(StoredFile))).one(),
            (await s.exec(select(func.count()).select_from(Event))).one(),
            sorted(office.storage.root.rglob("*.xlsx")),
        )
    cases = [
        (unsafe.zip_bomb(), "formulir.xlsx", "workbook_unpacked"),
        (unsafe.with_vba_project(), "formulir.xlsx", "workbook_macro"),
        (unsafe.SAMPLE.read_bytes(), "formulir.xlsm", "type"),  # not in the step's accept
    ]
    for data, name, detail in cases:
        with pytest.raises(FileRejected) as info:
            await e.collection.upload(p("unit1"), task.run_step_id, IncomingFile(data, name, XLSX))
        assert info.value.detail == detail
    async with office.db.session() as s:
        after = (
            (await s.exec(select(func.count()).select_from(StoredFile))).one(),
            (await s.exec(select(func.count()).select_from(Event))).one(),
            sorted(office.storage.root.rglob("*.xlsx")),
        )
    assert after == before  # no row, no event, no copy on disk

    # A link to another file is no refusal: the copy is kept, the link named.
    receipt = await e.collection.upload(
        p("unit1"), task.run_step_id, IncomingFile(unsafe.with_external_link(), "f.xlsx", XLSX)
    )
    assert receipt.checks == [{"code": "external_links", "count": 1}]


async def test_chat_replies(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await chat_to_collection(world)
        unit1 = p["unit1"]
        before = await state(world)
        await unit1.send_document(unsafe.zip_bomb(), "bom.xlsx", XLSX)
        await unit1.send_document(unsafe.with_vba_project(), "makro.xlsx", XLSX)
        await unit1.send_document(unsafe.with_macro_content_type(), "makro2.xlsx", XLSX)
        await world.idle()
        replies = [m["text"] for m in unit1.messages[-3:]]
        assert "terlalu besar setelah dibuka" in replies[0] and "50 MB" in replies[0]
        assert "berisi makro" in replies[1] and "xlsx" in replies[1]
        assert "berisi makro" in replies[2]
        assert all("Tidak ada yang dicatat" in r for r in replies)
        assert await state(world) == before

        await unit1.send_document(unsafe.with_external_link(), "tautan.xlsx", XLSX)
        await world.idle()
        receipt = unit1.latest("Tanda terima")["text"]
        assert "tautannya diabaikan" in receipt
        review = p["rina"].latest("tautan.xlsx")
        assert "tautannya diabaikan" in (review.get("caption") or review.get("text") or "")


async def test_macros_refused_at_a_step_that_does_not_read_workbooks(office: Office) -> None:
    """Step 2's form is sent on to every unit: a macro in it is refused too,
    while bytes that are no zip at all are that step's business."""
    e, p = office.engine, office.id
    await e.runs.start(p("kepala"), "TW IV 2026")
    [form] = await e.queries.tasks(p("perencana"))
    with pytest.raises(FileRejected) as info:
        await e.collection.upload(
            p("perencana"),
            form.run_step_id,
            IncomingFile(unsafe.with_vba_project(), "f.xlsx", XLSX),
        )
    assert info.value.detail == "workbook_macro"
    receipt = await e.collection.upload(
        p("perencana"), form.run_step_id, IncomingFile(b"PK draf", "draf.xlsx", XLSX)
    )
    assert receipt.checks == []
