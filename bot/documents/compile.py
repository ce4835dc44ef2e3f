"""The compiled workbook of step 8: the units' accepted workbooks in one.

The planner used to copy five workbooks into one by hand. The bot has them
all once the collection closes, so it drafts that workbook: a sheet per unit
(the values and the form's layout and formats, never a formula from a
unit's file), a recap sheet (Rekap) that adds up each indicator's target
and realisations over the units, as the SOP file's `workbook:` block says
where they are, and a sheet (Kiriman) that lists every unit's delivery: the
ones that were not workbooks (a PDF, a photo album) with their sender and
SHA-256, and the units closed without one, so none is silently missing.

`gather` reads what the run recorded (inside the engine's transaction);
`compile_workbook` is the slow part (openpyxl), run in a thread.
"""

from __future__ import annotations

import asyncio
import re
from copy import copy
from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Assignment, AssignmentState, Member, ReviewState, Run, RunStep, StoredFile
from bot.models import Unit as UnitRow
from bot.run.drafts import MadeDraft
from bot.sop import Sop, Step
from bot.sop.schema import WorkbookCheck
from bot.storage import FileStorage, extension_of
from bot.texts import Texts, plain
from bot.workbook import (
    WORKBOOK_EXTENSIONS,
    BrokenWorkbook,
    UnsafeWorkbook,
    open_workbook,
)

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")


@dataclass(frozen=True)
class Delivery:
    """One unit's part in the collection, as the compiled workbook shows it:
    `kind` is workbook, document, photo (accepted files), closed or none."""

    unit: str
    kind: str
    sender: str = ""
    name: str = ""
    sha256: str = ""
    size: int = 0
    pages: int = 0
    note: str = ""
    path: Path | None = None  # a workbook's file, to be read


@dataclass
class Compiled:
    """What the compiled workbook holds, for the event log and the tests."""

    sheets: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)  # with a sheet of their own
    indicators: int = 0
    left_out: list[str] = field(default_factory=list)  # units not in the recap


def _words() -> Any:
    return Texts().env.get_template("documents/compiled_words.txt.j2").module


def _word(words: Any, name: str, *args: Any) -> str:
    return plain(str(getattr(words, name)(*args))).strip()


def sheet_title(name: str, taken: set[str]) -> str:
    """A unit's name as a sheet title: Excel allows 31 characters and no
    []:*?/\\; a name that would repeat gets a number."""
    base = _SHEET_NAME_BAD.sub(" ", name).strip()[:31] or "Unit"
    title, n = base, 2
    while title.casefold() in taken:
        suffix = f" ({n})"
        title, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(title.casefold())
    return title


def _copy_sheet(source: Worksheet, target: Worksheet) -> None:
    """Values and looks, never formulas: a text that starts with "=" stays
    text (openpyxl would make it a formula), and a unit's formula arrives as
    the value Excel stored (the source is read with data_only)."""
    for row in source.iter_rows():
        for cell in row:
            if cell.value is None and not cell.has_style:
                continue
            new = target[cell.coordinate]
            new.value = cell.value
            if isinstance(cell.value, str) and cell.value.startswith("="):
                new.data_type = "s"
            if cell.has_style:
                # The style objects are copied: a style belongs to its book.
                new.font = copy(cell.font)
                new.fill = copy(cell.fill)
                new.border = copy(cell.border)
                new.alignment = copy(cell.alignment)
                new.protection = copy(cell.protection)
                new.number_format = cell.number_format
    for key, dim in source.column_dimensions.items():
        target.column_dimensions[key].width = dim.width
        target.column_dimensions[key].hidden = dim.hidden
    for number, rdim in source.row_dimensions.items():
        if rdim.height is not None:
            target.row_dimensions[number].height = rdim.height
    for merged in source.merged_cells.ranges:
        target.merge_cells(str(merged))
    target.freeze_panes = source.freeze_panes


def _label(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return " ".join(str(value).split())


def compile_workbook(
    title: str, check: WorkbookCheck, deliveries: list[Delivery], out: Path
) -> Compiled:
    """Write the compiled workbook to `out` (run in a thread: openpyxl is slow
    and synchronous). A workbook that cannot be read (it passed the first
    look when it came, so this is rare) is listed, not fatal."""
    # openpyxl is imported when a workbook is made (see bot/workbook.py).
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    words = _words()
    book = Workbook()
    recap = book.active
    assert recap is not None
    recap.title = _word(words, "sheet", "recap")
    result = Compiled(sheets=[recap.title])
    taken = {recap.title.casefold(), _word(words, "sheet", "deliveries").casefold()}
    numeric = check.numeric_columns
    headers: dict[str, str] = {}
    # indicator key -> label, measure, units, sums per numeric column
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    statuses: list[tuple[Delivery, str, str]] = []  # delivery, status, sheet
    for d in deliveries:
        if d.kind != "workbook" or d.path is None:
            statuses.append((d, d.kind, ""))
            continue
        try:
            with open_workbook(d.path, d.name, read_only=False) as (source_book, _):
                source = (
                    source_book[check.sheet]
                    if check.sheet and check.sheet in source_book.sheetnames
                    else source_book.active
                )
                if source is None:
                    raise BrokenWorkbook("no sheet")
                sheet = book.create_sheet(sheet_title(d.unit, taken))
                _copy_sheet(source, sheet)
                if check.header_row:
                    for c in numeric:
                        text = _label(source[f"{c}{check.header_row}"].value)
                        if text:
                            headers.setdefault(c, text)
                for r in range(check.first_row, check.last_row + 1):
                    label = _label(source[f"{check.label_column}{r}"].value)
                    if label is None:
                        continue
                    measure = (
                        _label(source[f"{check.measure_column}{r}"].value) or ""
                        if check.measure_column
                        else ""
                    )
                    entry = rows.setdefault(
                        (label.casefold(), measure.casefold()),
                        {"label": label, "measure": measure, "units": [], "sums": {}},
                    )
                    if d.unit not in entry["units"]:
                        entry["units"].append(d.unit)
                    for c in numeric:
                        value = source[f"{c}{r}"].value
                        if isinstance(value, Number) and not isinstance(value, bool):
                            entry["sums"][c] = entry["sums"].get(c, 0) + value
        except (BrokenWorkbook, UnsafeWorkbook, OSError):
            statuses.append((d, "unreadable", ""))
            continue
        result.sheets.append(sheet.title)
        result.units.append(d.unit)
        statuses.append((d, "workbook", sheet.title))

    # Rekap: one row per indicator (and unit of measure), the sums per column.
    head = [
        _word(words, "recap_head", "no"),
        _word(words, "recap_head", "indicator"),
        *([_word(words, "recap_head", "measure")] if check.measure_column else []),
        *(headers.get(c, c) for c in numeric),
        _word(words, "recap_head", "units"),
        _word(words, "recap_head", "count"),
    ]
    recap.append([_word(words, "recap_title", title)])
    recap["A1"].font = Font(bold=True, size=12)
    left_out = [d.unit for d, status, _ in statuses if status != "workbook"]
    result.left_out = left_out
    recap.append([_word(words, "recap_note", len(result.units), left_out)])
    recap.append([])
    recap.append(head)
    for cell in recap[4]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for n, entry in enumerate(rows.values(), start=1):
        recap.append(
            [
                n,
                entry["label"],
                *([entry["measure"]] if check.measure_column else []),
                *(entry["sums"].get(c) for c in numeric),
                ", ".join(entry["units"]),
                len(entry["units"]),
            ]
        )
    result.indicators = len(rows)
    recap.column_dimensions["A"].width = 5
    recap.column_dimensions["B"].width = 48
    first_number = 3 + (1 if check.measure_column else 0)
    for i in range(len(numeric)):
        recap.column_dimensions[get_column_letter(first_number + i)].width = 14
    recap.column_dimensions[get_column_letter(first_number + len(numeric))].width = 40
    recap.freeze_panes = "C5"

    # Kiriman: every unit's delivery, and the units without one.
    sheet = book.create_sheet(_word(words, "sheet", "deliveries"))
    result.sheets.append(sheet.title)
    sheet.append([_word(words, "deliveries_title", title)])
    sheet["A1"].font = Font(bold=True, size=12)
    sheet.append([])
    columns = ["no", "unit", "status", "sender", "name", "pages", "size", "sha256", "note"]
    sheet.append([_word(words, "deliveries_head", c) for c in columns])
    for cell in sheet[3]:
        cell.font = Font(bold=True)
    for n, (d, status, where) in enumerate(statuses, start=1):
        sheet.append(
            [
                n,
                d.unit,
                _word(words, "status", status, where),
                d.sender,
                d.name,
                d.pages or None,
                d.size or None,
                d.sha256,
                d.note,
            ]
        )
    for letter, width in zip("ABCDEFGHI", (5, 40, 34, 20, 36, 9, 12, 66, 40), strict=True):
        sheet.column_dimensions[letter].width = width
    out.parent.mkdir(parents=True, exist_ok=True)
    book.save(out)
    return result


def recap_rows(path: Path) -> list[tuple[Any, ...]]:
    """The Rekap's indicator rows of a compiled workbook (for the README's
    excerpt and the tests)."""
    with open_workbook(path, path.name, read_only=True) as (book, _):
        sheet = book.worksheets[0]
        return [r for r in sheet.iter_rows(min_row=5, values_only=True) if r and r[0] is not None]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "run"


class CompiledDraft:
    """The draft maker for `draft: compiled` (bot/run/drafts.py): reads the
    collection `draft_from` of the run, then builds the workbook."""

    def __init__(self, storage: FileStorage) -> None:
        self.storage = storage

    async def __call__(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep
    ) -> MadeDraft | None:
        source = sop.step(step.draft_from or "")
        if source.workbook is None:
            return None
        deliveries = await gather(s, run, source, self.storage)
        if not deliveries:
            return None
        out = self.storage.temporary().with_suffix(".xlsx")
        try:
            made = await asyncio.to_thread(
                compile_workbook, run.title, source.workbook, deliveries, out
            )
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return MadeDraft(
            path=out,
            name=f"rekap-data-kinerja-{slug(run.title)}.xlsx",
            mime=XLSX_MIME,
            details={
                "sheets": made.sheets,
                "units": made.units,
                "indicators": made.indicators,
                "left_out": made.left_out,
            },
        )


async def gather(s: AsyncSession, run: Run, source: Step, storage: FileStorage) -> list[Delivery]:
    """Each unit's part in the latest round of the collection: its accepted
    file(s), or why it has none (closed, with the reason and by whom)."""
    rs = (
        await s.exec(
            select(RunStep)
            .where(RunStep.run_id == run.id, RunStep.step_key == source.key)
            .order_by(col(RunStep.iteration).desc())
        )
    ).first()
    if rs is None:
        return []
    assignments = (
        await s.exec(
            select(Assignment)
            .where(Assignment.run_step_id == rs.id, col(Assignment.unit_id).is_not(None))
            .order_by(col(Assignment.unit_id))
        )
    ).all()
    names = {m.id: m.name for m in (await s.exec(select(Member))).all()}
    units = {u.id: u.name for u in (await s.exec(select(UnitRow))).all()}
    deliveries = []
    for a in assignments:
        unit = units.get(a.unit_id or 0, "")
        accepted = list(
            (
                await s.exec(
                    select(StoredFile)
                    .where(
                        StoredFile.assignment_id == a.id,
                        StoredFile.review_state == ReviewState.accepted,
                    )
                    .order_by(col(StoredFile.version).desc(), col(StoredFile.id))
                )
            ).all()
        )
        if accepted:
            latest = [f for f in accepted if f.version == accepted[0].version]
            first = latest[0]
            sender = names.get(first.uploader_id or 0, "")
            if first.kind == "photo" or len(latest) > 1:
                deliveries.append(
                    Delivery(
                        unit,
                        "photo" if first.kind == "photo" else "document",
                        sender,
                        first.original_name,
                        first.sha256,
                        sum(f.size for f in latest),
                        len(latest),
                        note=", ".join(f"{f.original_name} {f.sha256}" for f in latest[1:]),
                    )
                )
            else:
                workbook = extension_of(first.original_name) in WORKBOOK_EXTENSIONS
                deliveries.append(
                    Delivery(
                        unit,
                        "workbook" if workbook else "document",
                        sender,
                        first.original_name,
                        first.sha256,
                        first.size,
                        1,
                        path=storage.path(first.storage_path) if workbook else None,
                    )
                )
        elif a.state == AssignmentState.closed:
            words = _words()
            deliveries.append(
                Delivery(
                    unit,
                    "closed",
                    note=_word(words, "closed_note", a.close_reason or "", names.get(a.closed_by)),
                )
            )
        else:
            deliveries.append(Delivery(unit, "none"))
    return deliveries
