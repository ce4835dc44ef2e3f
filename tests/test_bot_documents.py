"""The documents in chat: the sekretaris's step-13 task carries the draft
cover letter with its number and a button to use it; /laporan sends the
monitoring form and its chart."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import docx
import pytest
from sqlmodel import select

from bot.botapi import Person as FakeUser
from bot.models import LetterNumber, Run, RunStep, StepState
from bot.views import IncomingFile
from tests.fakes.world import World, running_bot
from tests.support import DATA, UNIT_FILES, XLSX


async def people(world: World) -> dict[str, FakeUser]:
    p = {
        "kepala": await world.join("kepala", 1001, "Drs. Kepala", "kepala_badan"),
        "sekretaris": await world.join("sekretaris", 1002, "Sekretaris", "sekretaris"),
        "rina": await world.join("rina", 1003, "Rina", "perencana"),
    }
    for i, unit in enumerate(UNIT_FILES, start=1):
        p[f"unit{i}"] = await world.join(f"unit{i}", 2000 + i, f"Staf {i}", "anggota_tim", unit)
    return p


async def open_step(world: World) -> RunStep:
    async with world.services.db.session() as s:
        [rs] = (await s.exec(select(RunStep).where(RunStep.state == StepState.open))).all()
    return rs


async def to_letter(world: World, p: dict[str, FakeUser]) -> None:
    """Steps 1-12 through the engine (the chat parts are tested elsewhere)."""
    await world.to_collection()
    e = world.services.engine
    ids = {k: await world.member_id(v) for k, v in p.items()}
    step6 = await open_step(world)
    receipts = [
        await e.collection.upload(
            ids[f"unit{i}"], step6.id or 0, IncomingFile((DATA / name).read_bytes(), name, XLSX)
        )
        for i, name in enumerate(UNIT_FILES.values(), start=1)
    ]
    for r in receipts:
        await e.collection.review(ids["rina"], r.file.id or 0, accept=True)
    step8 = await open_step(world)
    await e.collection.upload(
        ids["rina"], step8.id or 0, IncomingFile(b"PK data", "data-kinerja-tw3.xlsx", XLSX)
    )
    await e.steps.complete(ids["rina"], step8.id or 0)
    await e.steps.complete(ids["sekretaris"], (await open_step(world)).id or 0)
    await e.steps.decide(ids["kepala"], (await open_step(world)).id or 0, "setuju")
    await e.steps.complete(ids["kepala"], (await open_step(world)).id or 0)
    await world.idle()


def letter_task(person: FakeUser) -> dict[str, Any]:
    found = [m for m in person.find("Langkah 13") if m.get("reply_markup") and "document" in m]
    assert found, person.texts()[-3:]
    return found[-1]


async def test_the_sekretaris_uses_the_drafted_letter(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as world:
        p = await people(world)
        await to_letter(world, p)
        task = letter_task(p["sekretaris"])
        assert task["document"]["file_name"] == "surat-pengantar-2026-0001.docx"
        assert "000.1.2/1/Bakesbangpol/2026" in task["caption"]
        letter = docx.Document(io.BytesIO(world.server.file_bytes(task["document"]["file_id"])))
        cells = [c.text for t in letter.tables for r in t.rows for c in r.cells]
        assert "000.1.2/1/Bakesbangpol/2026" in cells and "data-kinerja-tw3.xlsx" in cells
        buttons = [b["text"] for row in task["reply_markup"]["inline_keyboard"] for b in row]
        assert any("Pakai surat ini" in b for b in buttons)
        # A button of the letter's earlier verb (`ltr`, in chats from before
        # the letter became a draft like the others) is answered as out of
        # date, and changes nothing.
        rs = await open_step(world)
        query = await p["sekretaris"].press_data(task, f"ltr:{rs.id}")
        await world.idle()
        old = p["sekretaris"].answer(query)
        assert old is not None and "tidak dikenali" in old["text"]
        assert (await open_step(world)).id == rs.id
        async with world.services.db.session() as s:
            assert (await s.exec(select(Run))).one().letter_number is None
        # The planner may not use it (not their step): a clear refusal, nothing changes.
        query = await p["rina"].press(task, "Pakai surat ini")
        await world.idle()
        refusal = p["rina"].answer(query)
        assert refusal is not None and refusal.get("show_alert")
        # The sekretaris uses it: the step is done with that number.
        query = await p["sekretaris"].press(task, "Pakai surat ini")
        await world.idle()
        answer = p["sekretaris"].answer(query)
        assert answer is not None and "Langkah 13 tercatat selesai" in answer["text"]
        async with world.services.db.session() as s:
            [run] = (await s.exec(select(Run))).all()
            [number] = (await s.exec(select(LetterNumber))).all()
        assert run.letter_number == "000.1.2/1/Bakesbangpol/2026"
        assert number.state.value == "used"
        assert p["rina"].find("Langkah 14")  # the run goes on
        # The button is gone from the task (edited by the outbox).
        edited = next(m for m in p["sekretaris"].messages if m["message_id"] == task["message_id"])
        assert not edited.get("reply_markup")


async def test_another_number_typed_is_the_runs_and_laporan_sends_the_form(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as world:
        p = await people(world)
        await to_letter(world, p)
        task = letter_task(p["sekretaris"])
        await p["sekretaris"].press(task, "Selesai")
        await world.idle()
        assert "nomor surat pengantar" in p["sekretaris"].last["text"]
        await p["sekretaris"].send_text("045/12/Setda/2026")
        await world.idle()
        async with world.services.db.session() as s:
            [run] = (await s.exec(select(Run))).all()
            [number] = (await s.exec(select(LetterNumber))).all()
        assert run.letter_number == "045/12/Setda/2026"
        assert number.state.value == "replaced"

        # The year's monitoring form: workbook, DOCX and chart; a unit may not.
        before = len(p["kepala"].documents())
        await p["kepala"].send_command("/laporan", "2026")
        await p["unit1"].send_command("/laporan", "2026")
        await p["kepala"].send_command("/laporan", "tahun lalu")
        await world.idle()
        sent = p["kepala"].documents()[before:]
        assert [m["document"]["file_name"] for m in sent if "document" in m] == [
            "monitoring-sop-2026.xlsx",
            "monitoring-sop-2026.docx",
        ]
        assert [m for m in sent if "photo" in m]
        assert "Tahun 2026" in sent[1]["caption"]
        assert "tidak berwenang" in p["unit1"].last["text"]
        assert "/laporan 2026" in p["kepala"].last["text"]  # how to write a period
        await p["kepala"].send_command("/laporan", "2031")
        await world.idle()
        assert "Belum ada kegiatan" in p["kepala"].last["text"]


def test_the_years_numbers_and_a_periods_form_from_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sopbot letters` lists each number with its run and state (a
    cancelled run's too); `sopbot report --from --to` writes the form."""
    import asyncio

    from bot.cli import main

    async def walk() -> None:
        async with running_bot(tmp_path) as world:
            p = await people(world)
            await to_letter(world, p)
            kepala = await world.member_id(p["kepala"])
            async with world.services.db.session() as s:
                [run] = (await s.exec(select(Run))).all()
            await world.services.engine.runs.cancel(kepala, run.id or 0, "Diulang bulan depan")

    asyncio.run(walk())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    assert main(["letters", "--year", "2026"]) == 0
    out = capsys.readouterr().out
    assert "Nomor surat pengantar tahun 2026: 1" in out
    assert "000.1.2/1/Bakesbangpol/2026" in out and "kegiatan dibatalkan (tetap terpakai)" in out
    target = tmp_path / "monitoring.xlsx"
    assert main(["report", "--from", "2026-01-01", "--to", "2026-12-31", "-o", str(target)]) == 0
    assert target.stat().st_size and target.with_suffix(".docx").stat().st_size
    assert "Monitoring 1 kegiatan" in capsys.readouterr().out
    assert main(["report", "--from", "2026-12-31", "--to", "2026-01-01"]) == 2
    assert main(["report", "--from", "2027-01-01", "--to", "2027-12-31"]) == 1
