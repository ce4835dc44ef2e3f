"""The first look at the units' workbooks, on the sample files."""

from __future__ import annotations

import pytest

from bot.sop import SopRegistry
from bot.workbook import BrokenWorkbook, inspect_workbook
from tests.support import DATA, FORM, UNIT_FILES, workbook


@pytest.fixture
def check():  # type: ignore[no-untyped-def]
    return SopRegistry.load().get("pengumpulan-data-kinerja").step("kumpul_data").workbook


def test_filled_copies_are_clean(check) -> None:  # type: ignore[no-untyped-def]
    for unit, name in UNIT_FILES.items():
        if "salah" not in name:
            assert inspect_workbook((DATA / name).read_bytes(), check) == [], unit


def test_the_copy_with_mistakes(check) -> None:  # type: ignore[no-untyped-def]
    salah = DATA / UNIT_FILES["Bidang Politik Dalam Negeri"]
    assert inspect_workbook(salah.read_bytes(), check) == [
        "Nama unit kerja (C2) belum diisi.",
        'Baris 6, Realisasi TW III (H6): berisi "belum ada data", seharusnya angka.',
    ]


def test_blank_form_and_gaps(check) -> None:  # type: ignore[no-untyped-def]
    assert inspect_workbook(FORM.read_bytes(), check) == [
        "Nama unit kerja (C2) belum diisi.",
        "Belum ada indikator kinerja yang diisi.",
    ]
    import io

    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(workbook("Sekretariat")))
    book.active["F6"] = None
    book.active["G6"] = None
    out = io.BytesIO()
    book.save(out)
    assert inspect_workbook(out.getvalue(), check) == [
        "Baris 6: Realisasi TW I, Realisasi TW II kosong padahal kolom sesudahnya terisi."
    ]


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 rusak", b"%PDF-1.4", b"\x00" * 100])
def test_broken_workbooks(check, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BrokenWorkbook):
        inspect_workbook(data, check)
