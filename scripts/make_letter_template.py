"""Rebuild templates/documents/surat-pengantar.docx (the cover letter's layout).

The bot fills it with docxtpl (bot/documents/letter.py): every {{ field }}
below is what an office's own template may use too (README, "Surat
pengantar"). Edit the layout here and run this script, or open the .docx
in Word or LibreOffice and edit it there, keeping the {{ fields }} intact.
"""

from pathlib import Path

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

OUT = Path(__file__).resolve().parent.parent / "templates" / "documents" / "surat-pengantar.docx"


def rule_below(paragraph) -> None:  # type: ignore[no-untyped-def]
    """The double line under a kop surat."""
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "thickThinSmallGap"), ("w:sz", "18"), ("w:space", "1")):
        bottom.set(qn(key), value)
    bottom.set(qn("w:color"), "000000")
    borders.append(bottom)
    paragraph._p.get_or_add_pPr().append(borders)


def widths(table, cm: list[float]) -> None:  # type: ignore[no-untyped-def]
    """Fixed column widths (Word reads the cells', LibreOffice the grid's)."""
    table.autofit = False
    for column, width in zip(table.columns, cm, strict=True):
        column.width = Cm(width)
        for cell in column.cells:
            cell.width = Cm(width)


def line(doc, text="", *, bold=False, size=12, align=None, after=0):  # type: ignore[no-untyped-def]
    p = doc.add_paragraph()
    p.paragraph_format.space_after = Pt(after)
    p.paragraph_format.space_before = Pt(0)
    if align is not None:
        p.alignment = align
    if text:
        run = p.add_run(text)
        run.bold = bold
        run.font.size = Pt(size)
    return p


def main() -> None:
    doc = Document()
    section = doc.sections[0]
    section.page_height, section.page_width = Cm(33), Cm(21.5)  # F4, as offices print
    section.left_margin = section.right_margin = Cm(2.5)
    section.top_margin, section.bottom_margin = Cm(1.5), Cm(2)
    style = doc.styles["Normal"]
    style.font.name = "Arial"
    style.font.size = Pt(12)

    center = WD_ALIGN_PARAGRAPH.CENTER
    line(doc, "{{ kop.pemerintah }}", bold=True, size=14, align=center)
    line(doc, "{{ kop.instansi }}", bold=True, size=16, align=center)
    address = "{{ kop.alamat }}, {{ kop.kota }}{% if kop.kode_pos %} {{ kop.kode_pos }}{% endif %}"
    line(doc, address, size=10, align=center)
    contact = line(
        doc,
        "{% if kop.telepon %}Telepon {{ kop.telepon }}{% endif %}"
        "{% if kop.email %} Pos-el {{ kop.email }}{% endif %}"
        "{% if kop.laman %} Laman {{ kop.laman }}{% endif %}",
        size=10,
        align=center,
        after=12,
    )
    rule_below(contact)

    line(doc, "{{ kop.kota }}, {{ tanggal }}", align=WD_ALIGN_PARAGRAPH.RIGHT, after=12)
    head = doc.add_table(rows=4, cols=3)
    for row, (label, value) in enumerate(
        [
            ("Nomor", "{{ nomor }}"),
            ("Sifat", "{{ sifat }}"),
            ("Lampiran", "{{ lampiran }}"),
            ("Perihal", "{{ perihal }}"),
        ]
    ):
        cells = head.rows[row].cells
        cells[0].text, cells[1].text, cells[2].text = label, ":", value
    widths(head, [2.5, 0.5, 13.0])
    line(doc, after=12)
    line(doc, "Kepada")
    line(doc, "{{ kepada }}")
    line(doc, "di")
    line(doc, "{{ di }}", after=12).paragraph_format.left_indent = Cm(1)

    body = line(
        doc,
        "Bersama ini kami sampaikan dokumen hasil {{ sop }} untuk kegiatan {{ kegiatan }}, "
        "sebagaimana daftar berikut:",
        after=6,
    )
    body.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    body.paragraph_format.first_line_indent = Cm(1)

    table = doc.add_table(rows=3, cols=4)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, text in zip(
        table.rows[0].cells, ["No.", "Nama dokumen", "Banyaknya", "Keterangan"], strict=True
    ):
        cell.text = text
        cell.paragraphs[0].runs[0].bold = True
        cell.paragraphs[0].alignment = center
    # docxtpl repeats the row between the {%tr %} rows once per document.
    table.rows[1].cells[0].text = "{%tr for d in dokumen %}"
    loop = table.rows[2].cells
    loop[0].text, loop[1].text, loop[2].text, loop[3].text = (
        "{{ loop.index }}",
        "{{ d.nama }}",
        "{{ d.banyaknya }}",
        "{{ d.keterangan }}",
    )
    end = table.add_row().cells
    end[0].text = "{%tr endfor %}"
    widths(table, [1.2, 8.5, 3.3, 3.0])

    closing = line(
        doc,
        "Demikian disampaikan, atas perhatian dan kerja samanya diucapkan terima kasih.",
        after=24,
    )
    closing.paragraph_format.space_before = Pt(12)
    closing.paragraph_format.first_line_indent = Cm(1)
    closing.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY

    for text, after in [
        ("{{ penandatangan.jabatan }}", 60),
        (
            "{% if penandatangan.nama %}{{ penandatangan.nama }}"
            "{% else %}(nama penanda tangan){% endif %}",
            0,
        ),
        ("{% if penandatangan.nip %}NIP. {{ penandatangan.nip }}{% endif %}", 12),
    ]:
        p = line(doc, text, after=after)
        p.paragraph_format.left_indent = Cm(9)

    line(doc, "{% if tembusan %}Tembusan:{% endif %}", size=10)
    line(doc, "{%p for t in tembusan %}", size=10)
    line(doc, "{{ loop.index }}. {{ t }}", size=10)
    line(doc, "{%p endfor %}", size=10)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc.save(OUT)
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
