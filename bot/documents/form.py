"""The monitoring form laid out: as a DOCX (templates/documents/
monitoring-sop.docx, docxtpl) and as sheets of a workbook (the Monitoring
sheet and the chart of the monev workbook, bot/report.py).

The marks and figures are bot/documents/monitoring.py's; the words are
templates/documents/monitoring_words.txt.j2's; the "Tindakan" and "Paraf
penilai" columns stay empty for the evaluator.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from bot.documents.letter import indonesian_date
from bot.documents.monitoring import Monitoring
from bot.office import OfficeConfig
from bot.texts import TEMPLATES_DIR

if TYPE_CHECKING:
    from openpyxl.workbook import Workbook

FORM_TEMPLATE = TEMPLATES_DIR / "documents" / "monitoring-sop.docx"
TICK = "✓"
Word = Callable[..., str]


def form_rows(form: Monitoring, word: Word) -> list[dict[str, Any]]:
    """A row per step, as both layouts show it."""
    rows = []
    for m in form.steps:
        good = m.good
        rows.append(
            {
                "no": m.number,
                "prosedur": m.prosedur,
                "baik": TICK if good is True else "",
                "tidak": TICK if good is False else "",
                "penilaian": word("penilaian", good),
                "catatan": word("catatan", m),
                "tindakan": "",
            }
        )
    return rows


def form_docx(
    forms: list[Monitoring],
    charts: list[bytes],
    office: OfficeConfig,
    day: date,
    word: Word,
) -> bytes:
    """The filled form, one section per SOP, each with its chart."""
    from docx.shared import Mm  # imported when a form is made (see chart.py)
    from docxtpl import DocxTemplate, InlineImage

    doc = DocxTemplate(str(FORM_TEMPLATE))
    fields = {
        "kop": office.letterhead.model_dump(),
        "judul": word("title"),
        "tanggal": indonesian_date(day),
        "forms": [
            {
                "sop": form.sop_name,
                "periode": form.period,
                "kegiatan": word("period_runs", form.runs),
                "rows": form_rows(form, word),
                "grafik": InlineImage(doc, io.BytesIO(chart), width=Mm(250)),
            }
            for form, chart in zip(forms, charts, strict=True)
        ],
    }
    doc.render(fields, autoescape=True)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


WIDTHS = [5, 60, 26, 60, 30, 14]  # of the form's columns, in the workbook


def add_form_sheets(book: Workbook, form: Monitoring, chart: bytes, word: Word) -> None:
    """The form as a sheet ("Monitoring") and its chart ("Grafik")."""
    from openpyxl.drawing.image import Image
    from openpyxl.styles import Alignment, Font, PatternFill

    sheet = book.create_sheet("Monitoring")
    sheet["A1"] = word("title")
    sheet["A1"].font = Font(bold=True, size=13)
    values = [form.sop_name, form.period, word("period_runs", form.runs)]
    for row, (label, value) in enumerate(
        zip(word("sheet_labels").split("|"), values, strict=True), start=2
    ):
        sheet.cell(row=row, column=1, value=label).font = Font(bold=True)
        sheet.cell(row=row, column=2, value=value)
    headers = word("sheet_headers").split("|")
    for column, (header, width) in enumerate(zip(headers, WIDTHS, strict=True), start=1):
        cell = sheet.cell(row=6, column=column, value=header)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.column_dimensions[cell.column_letter].width = width
    for line in form_rows(form, word):
        sheet.append(
            [line["no"], line["prosedur"], line["penilaian"], line["catatan"], line["tindakan"], ""]
        )
    for cells in sheet.iter_rows(min_row=7):
        for cell in cells:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A7"
    picture = book.create_sheet("Grafik")
    picture.add_image(Image(io.BytesIO(chart)), "A1")
