"""An office edits its SOP file while runs are open: each open run keeps the
definition it started with (tasks, /status, reminders, the monev report, a
restart), and only new runs take the edited one."""

from __future__ import annotations

import io
import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import yaml
from sqlmodel import delete, select

from bot.deadlines import Deadlines
from bot.models import Notification, Run, RunStep, SopDefinition, StepState
from bot.office import OfficeConfig
from bot.report import run_report
from bot.run import Engine
from bot.sop import Sop, SopRegistry, parse_sop
from bot.sop.loader import fingerprint
from bot.views import IncomingFile
from tests.support import FORM, XLSX, Office

WIB = ZoneInfo("Asia/Jakarta")
SEED = (
    Path(__file__).parent.parent / "bot" / "sop" / "definitions" / "pengumpulan-data-kinerja.yaml"
)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=WIB)


def edited() -> Sop:
    """The seed SOP as an office might edit it, keeping its version number:
    step 3 (kirim_format) removed, step 2 renamed and given 90 minutes."""
    raw = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    raw["steps"] = [s for s in raw["steps"] if s["key"] != "kirim_format"]
    for step in raw["steps"]:
        if step["key"] == "buat_format":
            step["waktu"] = 90
            step["next"] = "undangan_rapat"
            step["uraian"] = "Menyusun format pengumpulan data kinerja"
    text = yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)
    return parse_sop(text.replace("buat_format", "susun_format"), "diubah.yaml")


def summary(book: bytes) -> dict[str, object]:
    sheet = openpyxl.load_workbook(io.BytesIO(book))["Ringkasan"]
    return {row[0]: row[1] for row in sheet.iter_rows(min_row=3, values_only=True)}


def report_steps(book: bytes) -> list[tuple[object, ...]]:
    sheet = openpyxl.load_workbook(io.BytesIO(book))["Langkah"]
    return list(sheet.iter_rows(min_row=2, values_only=True))


async def steps_of(office: Office, run_id: int) -> dict[str, RunStep]:
    async with office.db.session() as s:
        rows = await s.exec(select(RunStep).where(RunStep.run_id == run_id))
        return {rs.step_key: rs for rs in rows.all()}


def restarted(office: Office, sops: SopRegistry) -> Engine:
    """A new process on the same database, with nothing cached."""
    old = office.engine
    return Engine(office.db, sops, old.calendar, office.clock, office.storage)


async def test_open_run_keeps_its_definition_new_run_takes_the_edit(office: Office) -> None:
    e, p = office.engine, office.id
    office.clock.set(at(2026, 11, 2, 8, 0))  # Monday
    original = e.kit.sops.get("pengumpulan-data-kinerja")
    old_run = await e.runs.start(p("kepala"), "TW III")
    [old_task] = await e.queries.tasks(p("perencana"))
    assert (old_task.step_key, old_task.waktu) == ("buat_format", 60)

    new_sop = edited()
    assert new_sop.version == original.version and fingerprint(new_sop) != old_run.sop_version
    e.kit.sops.replace(new_sop)

    # The open run's task, /status and step list are the ones it started with.
    [task] = await e.queries.tasks(p("perencana"))
    assert (task.step_key, task.waktu, task.uraian) == (
        "buat_format",
        60,
        original.step("buat_format").uraian,
    )
    [status] = await e.queries.run_status(old_run.id)
    assert [st.key for st in status.steps][:3] == ["disposisi", "buat_format", "kirim_format"]
    assert len(status.steps) == 15

    # A new run follows the edited file.
    new_run = await e.runs.start(p("kepala"), "TW IV")
    assert new_run.sop_version == fingerprint(new_sop)
    [new_status] = await e.queries.run_status(new_run.id)
    assert len(new_status.steps) == 14
    assert "kirim_format" not in {st.key for st in new_status.steps}
    fresh = next(t for t in await e.queries.tasks(p("perencana")) if t.run_id == new_run.id)
    assert (fresh.step_key, fresh.waktu) == ("susun_format", 90)
    assert fresh.due_at == at(2026, 11, 2, 9, 30)

    # The open run goes on through the step the new file no longer has.
    await e.collection.upload(
        p("perencana"), task.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
    )
    await e.steps.complete(p("perencana"), task.run_step_id)
    [send] = [t for t in await e.queries.tasks(p("perencana")) if t.run_id == old_run.id]
    assert (send.step_key, send.action, send.waktu) == ("kirim_format", "distribute", 25)

    # The deadline sweep reminds both runs, each by its own rules, without errors.
    office.clock.set(at(2026, 11, 2, 9, 40))  # susun_format (90) and kirim_format (25) late
    deadlines = Deadlines(e, OfficeConfig())
    result = await deadlines.sweep()
    assert result.errors == 0
    async with office.db.session() as s:
        reminded = {
            n.run_step_id
            for n in (
                await s.exec(select(Notification).where(Notification.template == "reminder"))
            ).all()
        }
    assert reminded == {send.run_step_id, fresh.run_step_id}
    # The new run's first escalation, by its own definition: due 09:30 plus its
    # 90 minutes (the old run's kirim_format, by its 25 minutes, has none left today).
    assert await deadlines.next_moment() == at(2026, 11, 2, 11, 0)

    # Both runs share nothing: two stored definitions, each hashing to its key.
    async with office.db.session() as s:
        rows = (await s.exec(select(SopDefinition).order_by(SopDefinition.created_at))).all()
    assert {r.fingerprint for r in rows} == {old_run.sop_version, new_run.sop_version}
    for row in rows:
        assert fingerprint(Sop.model_validate_json(row.definition)) == row.fingerprint

    # The monev reports name the definition each run used and list its steps.
    old_book = await run_report(e, old_run.id or 0, "Kantor Uji")
    new_book = await run_report(e, new_run.id or 0, "Kantor Uji")
    assert summary(old_book)["Versi definisi SOP"] == f"versi 1 (sidik {old_run.sop_version})"
    assert summary(new_book)["Versi definisi SOP"] == f"versi 1 (sidik {new_run.sop_version})"
    assert summary(old_book)["Waktu standar total (menit kerja)"] == original.total_waktu
    assert summary(new_book)["Waktu standar total (menit kerja)"] == new_sop.total_waktu
    assert {r[1] for r in report_steps(old_book)} >= {original.step("kirim_format").uraian}
    assert len(report_steps(new_book)) == 14

    # A restart that knows only the edited file still runs the old run its own way.
    again = restarted(office, SopRegistry([new_sop]))
    [status] = await again.queries.run_status(old_run.id)
    assert [st.key for st in status.steps][1:3] == ["buat_format", "kirim_format"]
    await again.steps.complete(p("perencana"), send.run_step_id)
    steps = await steps_of(office, old_run.id or 0)
    assert steps["kirim_format"].state == StepState.done
    assert steps["undangan_rapat"].state == StepState.open
    after = Deadlines(again, OfficeConfig())
    office.clock.set(at(2026, 11, 2, 10, 30))  # undangan_rapat (30 minutes) is late
    assert (await after.sweep()).errors == 0
    assert any(
        t.step_key == "undangan_rapat" and t.run_id == old_run.id
        for t in await again.queries.tasks(p("sekretaris"))
    )


async def test_runs_from_before_definitions_were_kept(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    """A run whose definition row is missing (started before migration 0005)
    gets it while the file still matches; once the file has changed it falls
    back to the current definition with one warning, and the report says so."""
    e, p = office.engine, office.id
    kept = await e.runs.start(p("kepala"), "TW I")
    lost = await e.runs.start(p("kepala"), "TW II")
    async with office.db.transaction() as s:
        await s.exec(delete(SopDefinition))

    # Start-up stores the definition of runs whose fingerprint the file still has.
    fresh = restarted(office, SopRegistry.load())
    assert await fresh.definitions.record_existing(office.db) == 1
    assert await fresh.definitions.record_existing(office.db) == 0
    async with office.db.session() as s:
        assert (await s.get(SopDefinition, kept.sop_version)) is not None

    # A run on a definition nobody stored, after the file changed: its fingerprint
    # is made unknown here, as if the row had never been written.
    async with office.db.transaction() as s:
        run = await s.get(Run, lost.id)
        assert run is not None
        run.sop_version = "1+000000000000"
    # (Only a waktu changes here: a fall-back cannot know renamed or removed steps.)
    slower = parse_sop(SEED.read_text(encoding="utf-8").replace("waktu: 60", "waktu: 90", 1))
    changed = restarted(office, SopRegistry([slower]))
    with caplog.at_level(logging.WARNING, logger="bot.definitions"):
        [status] = await changed.queries.run_status(lost.id)
        await changed.queries.run_status(lost.id)
        book = await run_report(changed, lost.id or 0, "Kantor Uji")
    warnings = [r for r in caplog.records if "never stored" in r.getMessage()]
    assert len(warnings) == 1
    assert {st.key: st.waktu for st in status.steps}["buat_format"] == 90
    text = str(summary(book)["Versi definisi SOP"])
    assert text.startswith("versi 1 (sidik 1+000000000000)")
    assert "definisi awal tidak tersimpan" in text and fingerprint(slower) in text
    # The run whose definition was stored at start-up is unaffected by the edit.
    [status] = await changed.queries.run_status(kept.id)
    assert {st.key: st.waktu for st in status.steps}["buat_format"] == 60


async def test_first_write_stores_an_unchanged_definition(office: Office) -> None:
    """Without a start-up pass, a run's first command stores its definition."""
    e, p = office.engine, office.id
    run = await e.runs.start(p("kepala"), "TW I")
    async with office.db.transaction() as s:
        await s.exec(delete(SopDefinition))
    fresh = restarted(office, SopRegistry.load())
    [task] = await fresh.queries.tasks(p("perencana"))  # a read stores nothing
    async with office.db.session() as s:
        assert (await s.get(SopDefinition, run.sop_version)) is None
    await fresh.collection.upload(
        p("perencana"), task.run_step_id, IncomingFile(FORM.read_bytes(), FORM.name, XLSX)
    )
    async with office.db.session() as s:
        row = await s.get(SopDefinition, run.sop_version)
    assert row is not None and row.sop_key == "pengumpulan-data-kinerja"
    # From now on an edit to the file no longer reaches this run.
    fresh.kit.sops.replace(edited())
    await fresh.steps.complete(p("perencana"), task.run_step_id)
    steps = await steps_of(office, run.id or 0)
    assert steps["kirim_format"].state == StepState.open
