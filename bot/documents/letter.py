"""The cover letter (surat pengantar) as a DOCX, from a template the office
may replace.

The layout is a Word document with docxtpl fields
(templates/documents/surat-pengantar.docx, made by
scripts/make_letter_template.py); an office names its own in the office
file (`letter.template`). This module only gathers the fields: the
letterhead, the number, the date written in Indonesian, the addressee and
subject, the run's title and the documents sent. `LetterDraft` is the
draft maker for `draft: letter` (bot/run/drafts.py): it draws the number
(bot/documents/numbering.py) and fills the template; what the number means
to the step and the run when it ends is bot/run/letters.py's.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.documents import numbering
from bot.models import Run, RunStep, StoredFile
from bot.office import OfficeConfig
from bot.run.drafts import MadeDraft
from bot.run.kit import RunKit
from bot.sop import CoverLetter, Sop, Step
from bot.texts import BULAN, TEMPLATES_DIR

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
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
    from docxtpl import DocxTemplate  # imported when a letter is made (see chart.py)

    doc = DocxTemplate(str(template))
    doc.render(fields, autoescape=True)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def letter_name(number: int, year: int) -> str:
    """The draft's file name: no slashes (the number has them)."""
    return f"surat-pengantar-{year}-{number:04d}.docx"


def sent_documents(files: list[StoredFile]) -> list[SentDocument]:
    """The letter's list of documents: a line per uploader's version (an
    album's pages counted on one line)."""
    pages: dict[tuple[int | None, int], list[str]] = {}
    for f in files:
        pages.setdefault((f.assignment_id, f.version), []).append(f.original_name)
    return [
        SentDocument(names[0], len(names), f"versi {version}" if version > 1 else "")
        for (_, version), names in pages.items()
    ]


LatestFiles = Callable[[AsyncSession, Run, str], Awaitable[list[StoredFile]]]


class LetterDraft:
    """The draft maker for `draft: letter`. The number is drawn in the
    transaction that opens the step, once per step opening (a second call
    for the same opening finds it: numbering.draw), because the draft
    carries it; the template is filled in a thread. An office template that
    docxtpl cannot fill raises, so the step opens without a draft (the
    number stays drawn, and the sekretaris types it or another)."""

    def __init__(self, kit: RunKit, latest_files: LatestFiles) -> None:
        # The kit, not its values: the office file is read at each letter.
        self.kit = kit
        self.latest_files = latest_files

    async def __call__(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep
    ) -> MadeDraft | None:
        if step.letter is None:
            return None
        office = self.kit.office
        local = self.kit.clock.now().astimezone(self.kit.calendar.tz)
        row = await numbering.draw(
            s,
            office=office.name,
            template=office.letter.number_format,
            local=local,
            run_id=run.id or 0,
            run_step_id=rs.id or 0,
        )
        documents: list[SentDocument] = []
        for key in step.letter.documents_from or step.attach_from:
            files = await self.latest_files(s, run, key)
            if files:
                documents = sent_documents(files)
                break
        fields = letter_fields(
            office,
            step.letter,
            number=row.text,
            day=local.date(),
            sop_name=sop.name,
            run_title=run.title,
            documents=documents,
        )
        template = template_of(office)
        out = self.kit.storage.temporary().with_suffix(".docx")
        try:
            await asyncio.to_thread(_write_letter, template, fields, out)
        except Exception as exc:
            out.unlink(missing_ok=True)
            raise ValueError(f"templat surat {template.name} tidak dapat diisi: {exc}") from exc
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return MadeDraft(
            path=out,
            name=letter_name(row.number, row.year),
            mime=DOCX_MIME,
            details={"number": row.text, "year": row.year, "sequence": row.number},
        )


def _write_letter(template: Path, fields: dict[str, Any], out: Path) -> None:
    out.write_bytes(render_letter(template, fields))
