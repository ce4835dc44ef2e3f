"""Remake the README's pictures of the documents (docs/*.png) from a real
walk: two runs through the engine on a throwaway SQLite database, with the
controlled clock (the same walk as tests/test_monitoring.py, each act a few
minutes after the one before), then LibreOffice and pdftoppm for the DOCX.

    .venv/bin/python scripts/make_readme_documents.py
    (needs: apt-get install libreoffice-writer-nogui poppler-utils)
"""

import asyncio
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import FakeClock  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.models import Run  # noqa: E402
from bot.office import load_office  # noqa: E402
from bot.report import monitoring_report  # noqa: E402
from bot.run.drafts import draft_of  # noqa: E402
from tests.letter_walk import finish, open_step, to_letter, use_letter  # noqa: E402
from tests.support import build_office  # noqa: E402

DOCS = ROOT / "docs"


async def walk(tmp: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp / 'walk.db'}")
    await db.create_all()
    clock = FakeClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    office = await build_office(db, clock, tmp / "files")
    e = office.engine
    e.kit.office = load_office(None)  # the bundled office file, letterhead and all
    random.seed(7)

    def paced(act):  # type: ignore[no-untyped-def]
        async def later(*args, **kwargs):  # type: ignore[no-untyped-def]
            clock.advance(minutes=random.randint(5, 25))
            return await act(*args, **kwargs)

        return later

    for part, name in [(e.steps, "complete"), (e.steps, "decide"), (e.steps, "use_draft")]:
        setattr(part, name, paced(getattr(part, name)))
    e.collection.review = paced(e.collection.review)  # type: ignore[method-assign]
    first = await to_letter(
        office,
        "Data Kinerja Triwulan III 2026",
        late_minutes=60,
        return_unit=True,
        close_unit=True,
        correction=True,
    )
    step = await open_step(office, first)
    async with db.session() as s:
        letter = await draft_of(s, step)
    assert letter is not None
    (tmp / "surat-pengantar.docx").write_bytes(office.storage.read(letter.storage_path))
    await use_letter(office, first)
    await finish(office, first)
    second = await to_letter(office, "Data Kinerja Triwulan IV 2026", late_minutes=120)
    await use_letter(office, second)
    await finish(office, second)
    async with db.session() as s:
        runs = [r for r in [await s.get(Run, first), await s.get(Run, second)] if r]
    report = await monitoring_report(e, e.kit.office, runs, "Tahun 2026")
    (tmp / "monitoring-sop.docx").write_bytes(report.document)
    (DOCS / "monitoring-grafik.png").write_bytes(report.charts[0])
    await db.dispose()


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        asyncio.run(walk(tmp))
        for doc, dpi in [("surat-pengantar", "70"), ("monitoring-sop", "60")]:
            subprocess.run(
                ["soffice", "--headless", "--convert-to", "pdf", "--outdir", name, f"{doc}.docx"],
                cwd=name,
                check=True,
                capture_output=True,
            )
            subprocess.run(
                ["pdftoppm", "-png", "-r", dpi, "-f", "1", "-l", "1", "-singlefile"]
                + [str(tmp / f"{doc}.pdf"), str(DOCS / doc)],
                check=True,
            )
    print(f"written {DOCS}/surat-pengantar.png, monitoring-sop.png, monitoring-grafik.png")


if __name__ == "__main__":
    main()
