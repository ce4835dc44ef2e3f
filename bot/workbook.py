"""A first look at a unit's workbook, so obvious mistakes are named at once.

The layout (which cell holds the unit's name, which rows and columns hold
numbers) comes from the SOP definition (`workbook:` on a step), not code. A
file that is not a readable workbook is refused; a readable one with
mistakes is kept, and the findings travel with the receipt and the review.
"""

from __future__ import annotations

import io
import zipfile
from numbers import Number
from pathlib import Path
from typing import Any

from bot.sop.schema import WorkbookCheck

WORKBOOK_EXTENSIONS = {"xlsx", "xlsm"}


class BrokenWorkbook(ValueError):
    """The bytes are not a workbook openpyxl can read."""


def _filled(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _same_name(a: object, b: str) -> bool:
    """Unit names match regardless of case and spacing (typed by hand)."""
    return " ".join(str(a).split()).casefold() == " ".join(b.split()).casefold()


def inspect_workbook(
    data: bytes | Path, check: WorkbookCheck, unit_name: str | None = None
) -> list[dict[str, Any]]:
    """Findings as plain data ({"code": ..., details}); [] when none. The
    words for them are in templates/workbook_findings.html.j2. With
    `unit_name` (the uploader's unit), a unit cell naming another unit is a
    finding: a copy of the wrong bidang's file is caught before review."""
    # openpyxl is imported when a workbook is read, not with the bot: it
    # costs the process about 12 MiB that most of its life never uses.
    from openpyxl import load_workbook
    from openpyxl.utils import column_index_from_string
    from openpyxl.utils.exceptions import InvalidFileException

    # A file on disk is opened as a stream: openpyxl judges a path by its
    # extension, and a download in progress is named *.part.
    with io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb") as source:
        try:
            book = load_workbook(source, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise BrokenWorkbook(str(exc)) from exc
        try:
            sheet = (
                book[check.sheet] if check.sheet and check.sheet in book.sheetnames else book.active
            )
            if sheet is None:
                raise BrokenWorkbook("no sheet")
            rows = list(sheet.iter_rows(min_row=1, max_row=check.last_row, values_only=True))
        finally:
            book.close()

    def cell(row: int, column: str) -> object:
        index = column_index_from_string(column) - 1
        values = rows[row - 1] if row - 1 < len(rows) else ()
        return values[index] if index < len(values) else None

    def header(column: str) -> str | None:
        value = cell(check.header_row, column) if check.header_row else None
        return str(value).strip() if _filled(value) else None

    findings: list[dict[str, Any]] = []
    if check.unit_cell:
        column = "".join(ch for ch in check.unit_cell if ch.isalpha())
        row = int("".join(ch for ch in check.unit_cell if ch.isdigit()))
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
