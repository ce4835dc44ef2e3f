"""The cover letter's number and draft (step 13, `draft: letter`): a
counter per office and year that never gives a number twice, on SQLite and
PostgreSQL; the letter is a draft like the bot's others, used with the one
`use` verb, its number kept by the letter's hook."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import docx
import pytest
from sqlmodel import select

from bot.db import Database
from bot.documents import numbering
from bot.documents.letter import indonesian_date
from bot.errors import EngineError, NotAllowed
from bot.models import (
    Event,
    LetterNumber,
    LetterNumberState,
    Run,
    RunStep,
    StoredFile,
)
from bot.run import Engine
from bot.run.drafts import DRAFT, draft_of
from bot.storage import FileStorage
from tests.letter_walk import finish, open_step, to_letter
from tests.support import Office

WIB = ZoneInfo("Asia/Jakarta")
FORMAT = "000.1.2/{nomor}/Bakesbangpol/{tahun}"


async def steps(db: Database, count: int) -> list[tuple[int, int]]:
    """`count` runs with one step each, to draw numbers for."""
    made = []
    async with db.transaction() as s:
        for i in range(count):
            run = Run(sop_key="x", sop_version="1", title=f"R{i}", started_at=datetime.now(UTC))
            s.add(run)
            await s.flush()
            rs = RunStep(run_id=run.id or 0, step_key="surat", number=13)
            s.add(rs)
            await s.flush()
            made.append((run.id or 0, rs.id or 0))
    return made


async def draw(db: Database, run_id: int, rs_id: int, local: datetime) -> LetterNumber:
    async with db.transaction() as s:
        return await numbering.draw(
            s, office="Kantor", template=FORMAT, local=local, run_id=run_id, run_step_id=rs_id
        )


async def test_fifty_at_once_get_fifty_distinct_consecutive_numbers(db: Database) -> None:
    made = await steps(db, 50)
    local = datetime(2026, 11, 30, 9, 0, tzinfo=WIB)
    drawn = await asyncio.gather(*(draw(db, r, rs, local) for r, rs in made))
    assert sorted(n.number for n in drawn) == list(range(1, 51))
    assert len({n.text for n in drawn}) == 50
    ends = {"000.1.2/1/Bakesbangpol/2026", "000.1.2/50/Bakesbangpol/2026"}
    assert {n.text for n in drawn} >= ends
    # Asking again for the same step gives its number, not a new one.
    again = await draw(db, *made[0], local)
    assert again.number == next(n.number for n in drawn if n.run_step_id == made[0][1])


async def test_a_new_year_starts_again_at_one(db: Database) -> None:
    made = await steps(db, 3)
    first = await draw(db, *made[0], datetime(2026, 12, 31, 15, 0, tzinfo=WIB))
    second = await draw(db, *made[1], datetime(2026, 12, 31, 15, 5, tzinfo=WIB))
    new_year = await draw(db, *made[2], datetime(2027, 1, 4, 8, 0, tzinfo=WIB))
    assert (first.number, second.number, new_year.number) == (1, 2, 1)
    assert new_year.text == "000.1.2/1/Bakesbangpol/2027"


async def test_the_database_refuses_a_number_twice(db: Database) -> None:
    """The guarantee is the constraint: a row forced in with a used number fails."""
    from sqlalchemy.exc import IntegrityError

    made = await steps(db, 2)
    got = await draw(db, *made[0], datetime(2026, 11, 30, 9, 0, tzinfo=WIB))
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(
                LetterNumber(
                    office="Kantor",
                    year=2026,
                    number=got.number,
                    text="dup",
                    run_id=made[1][0],
                    run_step_id=made[1][1],
                    issued_at=datetime.now(UTC),
                )
            )


def test_the_number_format_knows_roman_months_and_padding() -> None:
    local = datetime(2026, 11, 30, 9, 0, tzinfo=WIB)
    assert numbering.format_number("{nomor:03d}/BKBP/{bulan_romawi}/{tahun}", 7, local) == (
        "007/BKBP/XI/2026"
    )
    assert indonesian_date(local.date()) == "30 November 2026"


async def test_a_crash_before_commit_loses_no_number(db: Database) -> None:
    """Drawn inside a transaction that then fails: the counter goes back
    with it, so the next draw gets that same number (not lost)."""
    made = await steps(db, 2)
    local = datetime(2026, 11, 30, 9, 0, tzinfo=WIB)
    with pytest.raises(RuntimeError):
        async with db.transaction() as s:
            got = await numbering.draw(
                s,
                office="Kantor",
                template=FORMAT,
                local=local,
                run_id=made[0][0],
                run_step_id=made[0][1],
            )
            assert got.number == 1
            raise RuntimeError("crash")
    assert (await draw(db, *made[1], local)).number == 1


async def test_step_13_carries_a_draft_and_using_it_records_the_number(office: Office) -> None:
    """The draft carries the number drawn as step 13 opened; the process
    then stops, and the sekretaris uses the draft with a new engine (a
    restart): the very number drawn is the run's, and the next letter gets
    the next one, so a crash between drawing and finishing neither loses
    nor repeats a number."""
    p = office.id
    run_id = await to_letter(office)
    rs = await open_step(office, run_id)
    async with office.db.session() as s:
        row = (await s.exec(select(LetterNumber).where(LetterNumber.run_step_id == rs.id))).one()
        made = await draft_of(s, rs)
        made_events = (await s.exec(select(Event).where(Event.kind == "draft_made"))).all()
    [event] = [m for m in made_events if m.details["run_step_id"] == rs.id]
    assert row.text == "000.1.2/1/Bakesbangpol/2026" and row.state == LetterNumberState.drawn
    # The letter is a draft file of the step, made by the bot (no uploader).
    assert made is not None and made.kind == DRAFT and made.uploader_id is None
    assert made.original_name == "surat-pengantar-2026-0001.docx"
    assert event.details["draft"] == "letter" and event.details["number"] == row.text
    draft = docx.Document(io.BytesIO(office.storage.read(made.storage_path)))
    text = "\n".join(p.text for p in draft.paragraphs)
    tables = [c.text for t in draft.tables for r in t.rows for c in r.cells]
    today = indonesian_date(office.clock.now().astimezone(WIB).date())
    assert f"Contoh, {today}" in text and "TW IV 2026" in text
    assert row.text in tables and "ditandatangani.pdf" in tables
    # After a restart: a new engine on the same database and files.
    e = Engine(
        office.db,
        office.engine.kit.sops,
        office.engine.calendar,
        office.clock,
        FileStorage(office.storage.root),
    )
    with pytest.raises(NotAllowed):  # not their step
        await e.steps.use_draft(p("perencana"), rs.id or 0, made.id or 0)
    # A number typed before (held as a note) does not change the letter's.
    await e.steps.use_draft(p("sekretaris"), rs.id or 0, made.id or 0, note="99/lain/2026")
    async with office.db.session() as s:
        run = await s.get(Run, run_id)
        row = (await s.exec(select(LetterNumber).where(LetterNumber.run_step_id == rs.id))).one()
        [letter] = (
            await s.exec(
                select(StoredFile).where(StoredFile.run_step_id == rs.id, StoredFile.kind != DRAFT)
            )
        ).all()
        done = await s.get(RunStep, rs.id)
        [numbered] = (await s.exec(select(Event).where(Event.kind == "letter_numbered"))).all()
    assert run is not None and run.letter_number == row.text
    assert row.state == LetterNumberState.used
    assert done is not None and done.note == row.text
    assert letter.uploader_id == p("sekretaris") and letter.sha256 == made.sha256
    assert numbered.details["draft_used"] and numbered.details["number"] == row.text
    with pytest.raises(EngineError):  # the step is done
        await e.steps.use_draft(p("sekretaris"), rs.id or 0, made.id or 0)
    assert (await next_number(office)).number == 2


async def test_a_typed_number_replaces_the_drawn_one_which_stays_used(office: Office) -> None:
    e, p = office.engine, office.id
    first = await to_letter(office, "TW I")
    rs = await open_step(office, first)
    await e.steps.complete(p("sekretaris"), rs.id or 0, note="  045/77/Umum/2026 ")
    await finish(office, first)
    second = await to_letter(office, "TW II")
    await e.runs.cancel(p("kepala"), second, "Salah periode")
    async with office.db.session() as s:
        run = await s.get(Run, first)
        listed = await numbering.issued(s, e.kit.office.name, 2026)
        numbered = (await s.exec(select(Event).where(Event.kind == "letter_numbered"))).all()
    assert run is not None and run.letter_number == "045/77/Umum/2026"
    assert [(n.number, n.state, n.run_state) for n in listed] == [
        (1, "replaced", "done"),
        (2, "drawn", "cancelled"),
    ]
    assert numbered[0].details["drawn"] == "000.1.2/1/Bakesbangpol/2026"
    # Nothing is given twice: the next letter gets 3.
    assert (await next_number(office)).number == 3


async def next_number(office: Office) -> LetterNumber:
    """The number the next letter gets (a step of a run made for it, its
    draft made as the step's opening makes it)."""
    [(run_id, rs_id)] = await steps(office.db, 1)
    sop = office.engine.kit.sops.get("pengumpulan-data-kinerja")
    async with office.db.transaction() as s:
        run, rs = await s.get(Run, run_id), await s.get(RunStep, rs_id)
        assert run is not None and rs is not None
        made = await office.engine.drafts.prepare(s, run, sop, sop.step("surat_pengantar"), rs)
        drawn = await numbering.of_step(s, rs_id)
    assert made is not None and drawn is not None
    return drawn


def test_the_office_file_checks_the_letter_settings(tmp_path: Path) -> None:
    from bot.office import OfficeFileError, load_office

    office = tmp_path / "office.yaml"
    office.write_text('letter:\n  number_format: "000/Bakesbangpol/{tahun}"\n', encoding="utf-8")
    with pytest.raises(OfficeFileError, match=r"\{nomor\}"):
        load_office(office)
    office.write_text('letter:\n  number_format: "{nomor}/{kode}"\n', encoding="utf-8")
    with pytest.raises(OfficeFileError, match="bulan_romawi"):
        load_office(office)
    office.write_text("letter:\n  template: kop-kami.docx\n", encoding="utf-8")
    with pytest.raises(OfficeFileError, match="kop-kami.docx"):
        load_office(office)
    # The office's own template, next to its office file, is used.
    from bot.documents.letter import DEFAULT_TEMPLATE, template_of

    (tmp_path / "kop-kami.docx").write_bytes(DEFAULT_TEMPLATE.read_bytes())
    assert template_of(load_office(office)) == tmp_path / "kop-kami.docx"
    assert template_of(load_office(None)) == DEFAULT_TEMPLATE


async def test_a_broken_office_template_leaves_the_run_going(
    office: Office, tmp_path: Path
) -> None:
    """An office's own template docxtpl cannot fill: step 13 still opens,
    with its number and without a draft; the sekretaris types the number."""
    from docx import Document

    broken = Document()
    broken.add_paragraph("Nomor: {{ nomor ")  # an unclosed field
    path = tmp_path / "rusak.docx"
    broken.save(str(path))
    office.engine.kit.office = office.engine.kit.office.model_copy(
        update={"letter": office.engine.kit.office.letter.model_copy(update={"template": path})}
    )
    run_id = await to_letter(office)
    rs = await open_step(office, run_id)
    async with office.db.session() as s:
        row = (await s.exec(select(LetterNumber).where(LetterNumber.run_step_id == rs.id))).one()
        failed = (await s.exec(select(Event).where(Event.kind == "draft_failed"))).all()
        made = await draft_of(s, rs)
    assert made is None and len(failed) == 1 and "rusak.docx" in failed[0].details["error"]
    await office.engine.steps.complete(office.id("sekretaris"), rs.id or 0, note=row.text)
    async with office.db.session() as s:
        run = await s.get(Run, run_id)
    assert run is not None and run.letter_number == row.text
