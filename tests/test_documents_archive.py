"""Step 15's archive: the ZIP of a walked run, its manifest, and
`sopbot archive verify` / `export`."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlmodel import select

from bot.cli import main
from bot.clock import FakeClock
from bot.db import Database
from bot.documents.archive import MANIFEST, verify_archive
from bot.models import Event, Notification, Run, RunState, RunStep, StepState
from bot.views import IncomingFile
from tests.support import Office, build_office, to_collection
from tests.test_documents_compile import CLEAN, deliver, draft_of, open_step, xlsx

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


async def walk_to_archive(office: Office) -> tuple[int, RunStep]:
    """A whole run by the engine up to step 15 (the archive is made as it
    opens): the units deliver, the planner uses the compiled draft, the head
    approves and signs, the secretary sends the letter."""
    e, p = office.engine, office.id
    run_id = await to_collection(office)
    step8 = await deliver(office, run_id, {i: xlsx(q) for i, q in enumerate(CLEAN.values(), 1)})
    draft = await draft_of(office, step8)
    assert draft is not None
    await e.steps.use_draft(p("perencana"), step8.id or 0, draft.id or 0)
    await e.steps.complete(p("sekretaris"), (await open_step(office, run_id)).id or 0)
    await e.steps.decide(p("kepala"), (await open_step(office, run_id)).id or 0, "setuju")
    step12 = await open_step(office, run_id)
    assert step12.number == 12
    signed = IncomingFile(b"%PDF-1.4 ditandatangani", "data-kinerja-ttd.pdf", "application/pdf")
    await e.collection.upload(p("kepala"), step12.id or 0, signed)
    await e.steps.complete(p("kepala"), step12.id or 0)
    step13 = await open_step(office, run_id)
    letter = IncomingFile(b"PK surat pengantar", "surat-pengantar.docx", DOCX)
    await e.collection.upload(p("sekretaris"), step13.id or 0, letter)
    await e.steps.complete(p("sekretaris"), step13.id or 0, note="000.1.2/17/Bakesbangpol/2026")
    await e.steps.complete(p("perencana"), (await open_step(office, run_id)).id or 0)
    step15 = await open_step(office, run_id)
    assert step15.number == 15
    return run_id, step15


def rewrite(source: Path, target: Path, *, change: str = "", drop: str = "", add: str = "") -> None:
    """A copy of the archive with one member's first byte changed, one
    member left out, or one member added."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename == drop:
                continue
            data = src.read(info)
            if info.filename == change:
                data = bytes([data[0] ^ 1]) + data[1:]
            dst.writestr(info, data)
        if add:
            dst.writestr(add, b"tambahan")


async def test_archive_of_a_walked_run(office: Office, tmp_path: Path) -> None:
    run_id, step15 = await walk_to_archive(office)
    archive = await draft_of(office, step15)
    assert archive is not None and archive.original_name.endswith(".zip")
    path = office.storage.path(archive.storage_path)
    assert path.is_relative_to(office.storage.root)  # kept under DATA_DIR

    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        manifest = list(csv.DictReader(io.StringIO(z.read(MANIFEST).decode())))
        events = list(csv.DictReader(io.StringIO(z.read("peristiwa.csv").decode())))
    assert names[-1] == MANIFEST
    assert "dokumen-akhir/data-kinerja-ttd.pdf" in names
    assert "langkah-13-surat_pengantar/surat-pengantar.docx" in names
    assert any(n.startswith("langkah-08-sampaikan_data/rekap-data-kinerja-") for n in names)
    units = [n for n in names if n.startswith("unit/")]
    assert len(units) == 5 and len({n.split("/")[1] for n in units}) == 5
    assert any(n.startswith("laporan-monev-") and n.endswith(".xlsx") for n in names)
    assert {row["berkas"] for row in manifest} == set(names) - {MANIFEST}
    # The monev inside reads the transaction that opened step 15: 14 is done.
    with zipfile.ZipFile(path) as z:
        [monev] = [n for n in names if n.startswith("laporan-monev-")]
        steps = openpyxl.load_workbook(io.BytesIO(z.read(monev)))["Langkah"]
    states = {r[0]: r[4] for r in steps.iter_rows(min_row=2, values_only=True) if r[0]}
    assert states[14] == "selesai" and states[15] == "terbuka"
    row = next(r for r in manifest if r["berkas"].startswith("unit/sekretariat/"))
    assert (row["unit"], row["pengunggah"]) == ("Sekretariat", "Staf 1")
    assert int(row["ukuran"]) == CLEAN["Sekretariat"].stat().st_size
    async with office.db.session() as s:
        logged = (await s.exec(select(Event).where(Event.run_id == run_id))).all()
    assert [int(e["seq"]) for e in events] == sorted(e.seq for e in logged)[: len(events)]

    result = verify_archive(path)
    assert result.ok and result.checked == len(manifest)

    # One changed byte, one removed file, one extra file: each is named.
    unit_file = units[0]
    for kind, kw in (
        ("changed", {"change": unit_file}),
        ("missing", {"drop": "dokumen-akhir/data-kinerja-ttd.pdf"}),
        ("extra", {"add": "unit/sekretariat/selipan.xlsx"}),
    ):
        copy = tmp_path / f"{kind}.zip"
        rewrite(path, copy, **kw)  # type: ignore[arg-type]
        found = verify_archive(copy)
        assert not found.ok
        assert getattr(found, kind) == [next(iter(kw.values()))], kind
        others = {"changed", "missing", "extra"} - {kind}
        assert all(getattr(found, other) == [] for other in others)

    # The archive (and the signed document, attach_from) go with the task,
    # with the button that makes the archive the step's document and ends the run.
    async with office.db.session() as s:
        tasks = (
            await s.exec(
                select(Notification).where(
                    Notification.run_step_id == step15.id, Notification.template == "task"
                )
            )
        ).all()
    assert tasks
    for n in tasks:
        assert n.context["draft"]["sent"] and n.context["draft"]["kind"] == "archive"
        assert n.context["actions"][0]["verb"] == "use"
    await office.engine.steps.use_draft(office.id("perencana"), step15.id or 0, archive.id or 0)
    async with office.db.session() as s:
        run = await s.get(Run, run_id)
        done = await s.get(RunStep, step15.id)
    assert run is not None and run.state == RunState.done
    assert done is not None and done.state == StepState.done


async def test_a_large_archive_stays_on_the_server(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.run.messages.SEND_LIMIT", 1000)
    _, step15 = await walk_to_archive(office)
    async with office.db.session() as s:
        tasks = (
            await s.exec(
                select(Notification).where(
                    Notification.run_step_id == step15.id, Notification.template == "task"
                )
            )
        ).all()
        archive = await draft_of(office, step15)
    assert archive is not None
    for n in tasks:
        assert not n.context["draft"]["sent"] and n.file_id != archive.id
    from bot.texts import Texts

    words = Texts().render("task", **tasks[0].context)
    assert f"sopbot archive export {tasks[0].run_id}" in words
    assert "sopbot archive verify" in words and archive.storage_path in words


def test_cli_export_and_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(data))
    assert main(["db", "upgrade"]) == 0

    async def walk() -> int:
        from datetime import UTC, datetime

        db = Database(f"sqlite+aiosqlite:///{(data / 'sopbot.db').as_posix()}")
        try:
            clock = FakeClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
            office = await build_office(db, clock, data / "files")
            run_id, _ = await walk_to_archive(office)
            return run_id
        finally:
            await db.dispose()

    run_id = asyncio.run(walk())
    out = tmp_path / "salinan"
    out.mkdir()
    capsys.readouterr()
    assert main(["archive", "export", str(run_id), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    [copy] = list(out.glob("arsip-*.zip"))
    assert f"disalin ke {copy}" in said and "sopbot archive verify" in said
    assert main(["archive", "verify", str(copy)]) == 0
    assert "Semua berkas utuh" in capsys.readouterr().out

    broken = tmp_path / "rusak.zip"
    with zipfile.ZipFile(copy) as z:
        victim = next(n for n in z.namelist() if n.startswith("unit/"))
    rewrite(copy, broken, change=victim)
    assert main(["archive", "verify", str(broken)]) == 1
    said = capsys.readouterr().out
    assert f"BERUBAH  {victim}" in said and "TIDAK UTUH: 0 hilang, 1 berubah, 0 tambahan" in said
    assert main(["archive", "export", "999", "--out", str(out)]) == 1
    assert "belum punya arsip" in capsys.readouterr().err
    assert main(["archive", "verify", str(tmp_path / "tidak-ada.zip")]) == 2
