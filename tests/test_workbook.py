"""The first look at the units' workbooks, on the sample files."""

from __future__ import annotations

import pytest

from bot.sop import SopRegistry
from bot.sop.schema import WorkbookCheck
from bot.texts import Texts
from bot.workbook import BrokenWorkbook, inspect_workbook
from tests.support import DATA, FORM, UNIT_FILES, workbook

PERBAIKAN = DATA / "unit-3-bidang-politik-dalam-negeri-perbaikan.xlsx"


@pytest.fixture
def check() -> WorkbookCheck:
    found = SopRegistry.load().get("pengumpulan-data-kinerja").step("kumpul_data").workbook
    assert found is not None
    return found


def test_filled_copies_are_clean(check: WorkbookCheck) -> None:
    for unit, name in UNIT_FILES.items():
        if "salah" not in name:
            assert inspect_workbook((DATA / name).read_bytes(), check) == [], unit


def test_the_copy_with_mistakes(check: WorkbookCheck) -> None:
    salah = DATA / UNIT_FILES["Bidang Politik Dalam Negeri"]
    findings = inspect_workbook(salah.read_bytes(), check)
    assert findings == [
        {"code": "unit_missing", "cell": "C2"},
        {
            "code": "not_number",
            "row": 6,
            "cell": "H6",
            "header": "Realisasi TW III",
            "value": "belum ada data",
        },
        {"code": "gap", "row": 7, "headers": ["Realisasi TW I", "Realisasi TW II"]},
    ]
    text = Texts().render("workbook_findings", checks=findings)
    assert text.splitlines() == [
        "• Nama unit kerja (C2) belum diisi.",
        '• Baris 6, Realisasi TW III (H6): berisi "belum ada data", seharusnya angka.',
        "• Baris 7: Realisasi TW I, Realisasi TW II kosong padahal kolom sesudahnya terisi.",
    ]


def test_the_corrected_copy_is_clean(check: WorkbookCheck) -> None:
    """The copy unit 3 sends again after the planner returns the faulty one."""
    unit = "Bidang Politik Dalam Negeri"
    assert inspect_workbook(PERBAIKAN.read_bytes(), check) == []
    assert inspect_workbook(PERBAIKAN.read_bytes(), check, unit_name=unit) == []


def test_blank_form_and_gaps(check: WorkbookCheck) -> None:
    assert [f["code"] for f in inspect_workbook(FORM.read_bytes(), check)] == [
        "unit_missing",
        "no_indicators",
    ]
    import io

    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(workbook("Sekretariat")))
    book.active["F6"] = None
    book.active["G6"] = None
    out = io.BytesIO()
    book.save(out)
    gap = inspect_workbook(out.getvalue(), check)
    assert gap == [{"code": "gap", "row": 6, "headers": ["Realisasi TW I", "Realisasi TW II"]}]
    assert Texts().render("workbook_findings", checks=gap) == (
        "• Baris 6: Realisasi TW I, Realisasi TW II kosong padahal kolom sesudahnya terisi."
    )


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 rusak", b"%PDF-1.4", b"\x00" * 100])
def test_broken_workbooks(check: WorkbookCheck, data: bytes) -> None:
    with pytest.raises(BrokenWorkbook):
        inspect_workbook(data, check)
