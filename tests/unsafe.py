"""Workbooks that must not be read as they are, made from a sample copy:
a zip bomb, macro-enabled copies, a copy with a link to another file."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

from tests.support import DATA

SAMPLE = DATA / "unit-1-sekretariat.xlsx"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"


def _rebuild(change: Callable[[str, bytes], bytes | None], extra: dict[str, bytes]) -> bytes:
    """The sample's zip with each member passed through `change` (None
    drops it) and `extra` members added."""
    out = io.BytesIO()
    with zipfile.ZipFile(SAMPLE) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = change(info.filename, src.read(info))
            if data is not None:
                dst.writestr(info.filename, data)
        for name, data in extra.items():
            dst.writestr(name, data)
    return out.getvalue()


def zip_bomb(unpacked_mb: int = 60) -> bytes:
    """The sample with a worksheet that unpacks to `unpacked_mb` megabytes of
    blank XML (about 60 kB packed): its directory says so honestly."""
    out = io.BytesIO()
    with zipfile.ZipFile(SAMPLE) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        with dst.open("xl/worksheets/sheet2.xml", "w") as member:
            member.write(
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            )
            blank = b" " * (1024 * 1024)
            for _ in range(unpacked_mb):
                member.write(blank)
            member.write(b"</worksheet>")
    return out.getvalue()


def many_cells(cells: int) -> bytes:
    """The sample with a second sheet of `cells` cells (small when packed)."""
    row = b"".join(b'<c r="A1" t="n"><v>1</v></c>' for _ in range(100))
    rows = b"".join(b"<row>" + row + b"</row>" for _ in range(cells // 100))
    sheet = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<sheetData>" + rows + b"</sheetData></worksheet>"
    )
    return _rebuild(lambda name, data: data, {"xl/worksheets/sheet2.xml": sheet})


def with_vba_project() -> bytes:
    """An .xlsx in name with a VBA project inside."""
    return _rebuild(lambda name, data: data, {"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 macro"})


def with_macro_content_type() -> bytes:
    """The workbook part declared macro-enabled, without a vbaProject.bin."""

    def change(name: str, data: bytes) -> bytes:
        if name == "[Content_Types].xml":
            return data.replace(
                b"spreadsheetml.sheet.main+xml", b"../vnd.ms-excel.sheet.macroEnabled.main+xml"
            )
        return data

    return _rebuild(change, {})


EXTERNAL_LINK = (
    b'<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b'<externalBook r:id="rId1"><sheetNames><sheetName val="Data"/></sheetNames>'
    b'<sheetDataSet><sheetData sheetId="0"><row r="1"><cell r="A1"><v>999</v></cell></row>'
    b"</sheetData></sheetDataSet></externalBook></externalLink>"
)
EXTERNAL_RELS = (
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" TargetMode="External" Target="file:///C:/rahasia/anggaran.xlsx" '
    b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/externalLinkPath"/>'
    b"</Relationships>"
)


def with_external_link() -> bytes:
    """The sample with a link to another workbook, and a formula (its
    stored value 999) that reads from it in L6."""

    def change(name: str, data: bytes) -> bytes:
        if name == "[Content_Types].xml":
            return data.replace(
                b"</Types>",
                b'<Override PartName="/xl/externalLinks/externalLink1.xml" ContentType='
                b'"application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/>'
                b"</Types>",
            )
        if name == "xl/_rels/workbook.xml.rels":
            return data.replace(
                b"</Relationships>",
                b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                b'relationships/externalLink" Target="externalLinks/externalLink1.xml" '
                b'Id="rId9"/></Relationships>',
            )
        if name == "xl/workbook.xml":
            return data.replace(
                b"<definedNames/>",
                b'<externalReferences><externalReference xmlns:r="http://schemas.openxmlformats'
                b'.org/officeDocument/2006/relationships" r:id="rId9"/></externalReferences>'
                b"<definedNames/>",
            )
        if name == "xl/worksheets/sheet1.xml":
            cell = b'<c r="L6" t="inlineStr"><is><t>laporan-1.pdf</t></is></c>'
            if cell in data:
                return data.replace(cell, b'<c r="L6"><f>[1]Data!A1</f><v>999</v></c>')
        return data

    return _rebuild(
        change,
        {
            "xl/externalLinks/externalLink1.xml": EXTERNAL_LINK,
            "xl/externalLinks/_rels/externalLink1.xml.rels": EXTERNAL_RELS,
        },
    )
