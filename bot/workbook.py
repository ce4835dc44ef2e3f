"""Units' Excel workbooks: opened safely, and a first look at one so obvious
mistakes are named at once.

A workbook is a zip of XML written by whoever sent it. Before openpyxl reads
one, `screen` looks at the zip's directory and refuses what would hurt the
bot or the people it is passed on to: more unpacked bytes than a form can
need (a zip bomb is refused, never expanded), more cells than a form can
hold, and macros (by name, `vbaProject.bin`, or a macro content type). The
XML itself goes through defusedxml (openpyxl uses it once it is installed:
no entity expansion). `open_workbook` then reads values only: formulas are
never evaluated (the value Excel stored is read) and links to other files
are dropped.

The layout (which cell holds the unit's name, which rows and columns hold
numbers) comes from the SOP definition (`workbook:` on a step), not code. A
file that is not a readable workbook is refused; a readable one with
mistakes is kept, and the findings travel with the receipt and the review.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Number
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from bot.sop.schema import WorkbookCheck
from bot.storage import CHUNK, extension_of

if TYPE_CHECKING:
    from openpyxl.workbook.workbook import Workbook

WORKBOOK_EXTENSIONS = {"xlsx", "xlsm", "xltx", "xltm"}
# Excel's names for workbooks, templates and add-ins that carry macros.
MACRO_EXTENSIONS = {"xlsm", "xltm", "xlam"}
_MACRO_MARKS = (b"macroenabled", b"vbaproject")
# A cell element in a worksheet's XML (<c ...>, <x:c ...>); not <col>, <cfRule>.
_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c[\s/>]")


@dataclass(frozen=True)
class Limits:
    """What a unit's form may hold. The form is two dozen rows; these leave
    room for a form a hundred times larger and still keep a workbook's
    unpacked XML and openpyxl's copy of it small enough for the bot."""

    unpacked_bytes: int = 50 * 1024 * 1024
    cells: int = 200_000
    entries: int = 2_000


LIMITS = Limits()


class BrokenWorkbook(ValueError):
    """The bytes are not a workbook openpyxl can read."""


class UnsafeWorkbook(ValueError):
    """A workbook refused before it is read: `reason` is macro, unpacked or
    cells; `limit` the limit it passed (megabytes for unpacked)."""

    def __init__(self, reason: str, limit: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit


@dataclass(frozen=True)
class Screened:
    """What the zip's directory said about a workbook that may be read."""

    unpacked_bytes: int
    cells: int
    external_links: int


@contextmanager
def _source(data: bytes | Path) -> Iterator[BinaryIO]:
    # A file on disk is opened as a stream: openpyxl judges a path by its
    # extension, and a download in progress is named *.part.
    with io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb") as source:
        yield source


def _count_cells(member: IO[bytes], limit: int) -> int:
    """Cells in one worksheet's XML, read in chunks and stopped past `limit`.
    A plain count of tags, not a parse: it cannot be fooled into expanding
    anything, and it never holds more than a chunk."""
    count, carry = 0, b""
    while chunk := member.read(CHUNK):
        buffer = carry + chunk
        cut = buffer.rfind(b"<")
        cut = len(buffer) if cut < 0 else cut
        count += len(_CELL_TAG.findall(buffer, 0, cut))
        carry = buffer[cut:]
        if count > limit:
            break
    return count + len(_CELL_TAG.findall(carry))


def screen(data: bytes | Path, name: str = "", limits: Limits = LIMITS) -> Screened:
    """Check a workbook from its zip directory before anything parses it.
    Raises UnsafeWorkbook (macro, unpacked, cells) or BrokenWorkbook."""
    if extension_of(name) in MACRO_EXTENSIONS:
        raise UnsafeWorkbook("macro")
    with _source(data) as source:
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise BrokenWorkbook(str(exc)) from exc
        with archive:
            entries = archive.infolist()
            # The sizes the directory declares: zipfile never unpacks more than
            # that (a member that does is cut off and fails its CRC).
            unpacked = sum(e.file_size for e in entries)
            if len(entries) > limits.entries or unpacked > limits.unpacked_bytes:
                raise UnsafeWorkbook("unpacked", limits.unpacked_bytes // (1024 * 1024))
            names = [e.filename.lower() for e in entries]
            if any(n.endswith("vbaproject.bin") for n in names):
                raise UnsafeWorkbook("macro")
            try:
                types = archive.read("[Content_Types].xml").lower()
                if any(mark in types for mark in _MACRO_MARKS):
                    raise UnsafeWorkbook("macro")
                cells = 0
                for entry in entries:
                    lower = entry.filename.lower()
                    if lower.startswith("xl/worksheets/") and lower.endswith(".xml"):
                        with archive.open(entry) as member:
                            cells += _count_cells(member, limits.cells - cells)
                        if cells > limits.cells:
                            raise UnsafeWorkbook("cells", limits.cells)
            except (KeyError, zipfile.BadZipFile, OSError, EOFError) as exc:
                raise BrokenWorkbook(str(exc)) from exc
            links = sum(1 for n in names if n.startswith("xl/externallinks/externallink"))
            return Screened(unpacked, cells, links)


@contextmanager
def open_workbook(
    data: bytes | Path, name: str = "", *, read_only: bool = True, limits: Limits = LIMITS
) -> Iterator[tuple[Workbook, Screened]]:
    """A screened workbook, opened for its values: formulas are read as the
    value Excel last stored (never evaluated), links to other files are
    dropped, macros are never kept. Closed on leaving."""
    # openpyxl is imported when a workbook is read, not with the bot: it
    # costs the process about 12 MiB that most of its life never uses.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    screened = screen(data, name, limits)
    with _source(data) as source:
        try:
            book = load_workbook(source, read_only=read_only, data_only=True, keep_links=False)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise BrokenWorkbook(str(exc)) from exc
        except Exception as exc:  # defusedxml's refusals (entities, DTDs) and XML errors
            raise BrokenWorkbook(f"{type(exc).__name__}: {exc}") from exc
        try:
            yield book, screened
        finally:
            book.close()


def _filled(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _same_name(a: object, b: str) -> bool:
    """Unit names match regardless of case and spacing (typed by hand)."""
    return " ".join(str(a).split()).casefold() == " ".join(b.split()).casefold()


def split_cell(reference: str) -> tuple[str, int]:
    """'C2' -> ('C', 2)."""
    column = "".join(ch for ch in reference if ch.isalpha())
    return column, int("".join(ch for ch in reference if ch.isdigit()))


def inspect_workbook(
    data: bytes | Path, check: WorkbookCheck, unit_name: str | None = None, name: str = ""
) -> list[dict[str, Any]]:
    """Findings as plain data ({"code": ..., details}); [] when none. The
    words for them are in templates/workbook_findings.html.j2. With
    `unit_name` (the uploader's unit), a unit cell naming another unit is a
    finding: a copy of the wrong bidang's file is caught before review.
    Raises UnsafeWorkbook or BrokenWorkbook for a file that is refused."""
    from openpyxl.utils import column_index_from_string

    with open_workbook(data, name) as (book, screened):
        sheet = book[check.sheet] if check.sheet and check.sheet in book.sheetnames else book.active
        if sheet is None:
            raise BrokenWorkbook("no sheet")
        rows = list(sheet.iter_rows(min_row=1, max_row=check.last_row, values_only=True))

    def cell(row: int, column: str) -> object:
        index = column_index_from_string(column) - 1
        values = rows[row - 1] if row - 1 < len(rows) else ()
        return values[index] if index < len(values) else None

    def header(column: str) -> str | None:
        value = cell(check.header_row, column) if check.header_row else None
        return str(value).strip() if _filled(value) else None

    findings: list[dict[str, Any]] = []
    if screened.external_links:
        findings.append({"code": "external_links", "count": screened.external_links})
    if check.unit_cell:
        column, row = split_cell(check.unit_cell)
        value = cell(row, column)
        if not _filled(value):
            findings.append({"code": "unit_missing", "cell": check.unit_cell})
        elif unit_name and not _same_name(value, unit_name):
            findings.append(
                {
                    "code": "unit_mismatch",
                    "cell": check.unit_cell,
                    "value": str(value).strip()[:80],
                    "expected": unit_name,
                }
            )
    indicators = 0
    for row in range(check.first_row, check.last_row + 1):
        if not _filled(cell(row, check.label_column)):
            continue
        indicators += 1
        for column in check.numeric_columns:
            value = cell(row, column)
            if _filled(value) and not isinstance(value, Number):
                findings.append(
                    {
                        "code": "not_number",
                        "row": row,
                        "cell": f"{column}{row}",
                        "header": header(column),
                        "value": str(value)[:80],
                    }
                )
        filled = [_filled(cell(row, c)) for c in check.sequence_columns]
        if any(filled):
            last = max(i for i, f in enumerate(filled) if f)
            missing = [check.sequence_columns[i] for i in range(last) if not filled[i]]
            if missing:
                findings.append(
                    {"code": "gap", "row": row, "headers": [header(c) or c for c in missing]}
                )
    if indicators == 0:
        findings.append({"code": "no_indicators"})
    return findings
