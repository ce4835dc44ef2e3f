"""Rebuild templates/documents/monitoring-sop.docx, the form "Monitoring
Pelaksanaan SOP Administrasi Pemerintahan" (Permenpan-RB 35/2012).

bot/documents/form.py fills it with docxtpl: one section per SOP, a row
per step (`{%tr %}` rows repeat), the chart as an image. Edit the layout
here and run this script, or edit the .docx keeping its {{ fields }}.
"""

from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt

OUT = Path(__file__).resolve().parent.parent / "templates" / "documents" / "monitoring-sop.docx"
COLUMNS = [
    ("No.", 1.0),
    ("Prosedur", 7.0),
    ("Berjalan dengan baik", 2.4),
    ("Tidak berjalan dengan baik", 2.4),
    ("Catatan hasil penilaian", 6.0),
    ("Tindakan yang harus diambil", 4.5),
    ("Paraf penilai", 2.2),
]


def para(doc, text, *, bold=False, size=11, center=False):  # type: ignore[no-untyped-def]
    p = doc.add_paragraph()
    p.paragraph_format.space_after = Pt(2)
    if center:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = p.add_run(text)
    run.bold, run.font.size = bold, Pt(size)
    return p


def main() -> None:
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Cm(33), Cm(21.5)
    section.left_margin = section.right_margin = Cm(1.5)
    section.top_margin = section.bottom_margin = Cm(1.5)
    doc.styles["Normal"].font.name = "Arial"
    doc.styles["Normal"].font.size = Pt(10)

    para(doc, "{{ kop.instansi }}", bold=True, size=12, center=True)
    para(doc, "{%p for f in forms %}")
    para(doc, "{{ judul }}", bold=True, size=12, center=True)
    for label, field in [
        ("Nama SOP", "{{ f.sop }}"),
        ("Periode", "{{ f.periode }}"),
        ("Kegiatan yang dinilai", "{{ f.kegiatan }}"),
    ]:
        para(doc, f"{label}: {field}")

    table = doc.add_table(rows=4, cols=len(COLUMNS))
    table.style = "Table Grid"
    head, sub = table.rows[0].cells, table.rows[1].cells
    for i, (text, width) in enumerate(COLUMNS):
        for cell in (head[i], sub[i]):
            cell.width = Cm(width)
        if i not in (2, 3):
            head[i].text = text
            head[i].merge(sub[i])
        else:
            sub[i].text = text
    head[2].merge(head[3])
    head[2].text = "Penilaian terhadap penerapan"
    for cell in [*table.rows[0].cells, *table.rows[1].cells]:
        for p in cell.paragraphs:
            p.alignment = WD_ALIGN_PARAGRAPH.CENTER
            for run in p.runs:
                run.bold = True
    table.rows[2].cells[0].text = "{%tr for r in f.rows %}"
    row = table.rows[3].cells
    for cell, text in zip(
        row,
        [
            "{{ r.no }}",
            "{{ r.prosedur }}",
            "{{ r.baik }}",
            "{{ r.tidak }}",
            "{{ r.catatan }}",
            "{{ r.tindakan }}",
            "",
        ],
        strict=True,
    ):
        cell.text = text
    table.add_row().cells[0].text = "{%tr endfor %}"
    table.autofit = False
    for column, (_, width) in zip(table.columns, COLUMNS, strict=True):
        column.width = Cm(width)

    para(doc, "")
    para(doc, "{{ f.grafik }}", center=True)
    para(doc, "{%p endfor %}")
    para(doc, "{{ kop.kota }}, {{ tanggal }}")
    para(doc, "Penilai,")
    para(doc, "")
    para(doc, "")
    para(doc, "(.................................................)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc.save(OUT)
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
