"""The cover letter (surat pengantar) as a DOCX, from a template the office
may replace.

The layout is a Word document with docxtpl fields
(templates/documents/surat-pengantar.docx, made by
scripts/make_letter_template.py); an office names its own in the office
file (`letter.template`). This module only gathers the fields: the
letterhead, the number, the date written in Indonesian, the addressee and
subject, the run's title and the documents sent. Nothing here touches the
database: bot/run/letters.py decides when a letter is drafted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from docxtpl import DocxTemplate

from bot.office import OfficeConfig
from bot.sop import CoverLetter
from bot.texts import BULAN, TEMPLATES_DIR

DEFAULT_TEMPLATE = TEMPLATES_DIR / "documents" / "surat-pengantar.docx"
SMALL_WORDS = [
    "nol",
    "satu",
    "dua",
    "tiga",
    "empat",
    "lima",
    "enam",
    "tujuh",
    "delapan",
    "sembilan",
    "sepuluh",
]


def indonesian_date(day: date) -> str:
    """'30 November 2026', as a letter is dated."""
    return f"{day.day} {BULAN[day.month - 1]} {day.year}"


def counted(n: int, noun: str) -> str:
    """'2 (dua) berkas': how a letter counts what it encloses."""
    if 0 <= n < len(SMALL_WORDS):
        return f"{n} ({SMALL_WORDS[n]}) {noun}"
    return f"{n} {noun}"


@dataclass(frozen=True)
class SentDocument:
    """A line of the letter's list of documents."""

    name: str
    pages: int = 1
    note: str = ""


def template_of(office: OfficeConfig) -> Path:
    """The office's own template, or the bundled one."""
    return office.letter.template or DEFAULT_TEMPLATE


def letter_fields(
    office: OfficeConfig,
    letter: CoverLetter,
    *,
    number: str,
    day: date,
    sop_name: str,
    run_title: str,
    documents: list[SentDocument],
) -> dict[str, Any]:
    """Every field a letter template may use (README, "Surat pengantar")."""
    head = office.letterhead
    return {
        "kop": head.model_dump(),
        "nomor": number,
        "tanggal": indonesian_date(day),
        "sifat": letter.sifat,
        "lampiran": counted(len(documents), "berkas") if documents else "-",
        "perihal": letter.perihal,
        "kepada": office.letter.kepada,
        "di": office.letter.di,
        "sop": sop_name,
        "kegiatan": run_title,
        "dokumen": [
            {
                "nama": d.name,
                "banyaknya": counted(d.pages, "halaman") if d.pages > 1 else counted(1, "berkas"),
                "keterangan": d.note,
            }
            for d in documents
        ],
        "penandatangan": {
            "jabatan": office.letter.penandatangan_jabatan,
            "nama": office.letter.penandatangan_nama,
            "nip": office.letter.penandatangan_nip,
        },
        "tembusan": list(office.letter.tembusan),
    }


def render_letter(template: Path, fields: dict[str, Any]) -> bytes:
    """The filled DOCX. docxtpl escapes the values (a title with '&' or '<'
    stays text); a field the template does not use is simply left out."""
    doc = DocxTemplate(str(template))
    doc.render(fields, autoescape=True)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def letter_name(number: int, year: int) -> str:
    """The draft's file name: no slashes (the number has them)."""
    return f"surat-pengantar-{year}-{number:04d}.docx"
