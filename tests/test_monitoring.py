"""The monitoring form (Permenpan-RB 35/2012) filled from the record: its
marks are what the event log says about each step, in the workbook and the
DOCX alike, with the chart."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date

import docx
import openpyxl
from sqlmodel import col, select

from bot.documents.monitoring import monitor
from bot.models import Event, RunStep
from bot.office import OfficeConfig
from bot.report import monitoring_report, period_monitoring, run_report
from bot.texts import minutes_text
from tests.letter_walk import finish, to_letter, use_letter
from tests.support import Office


async def walk_two_runs(office: Office) -> list[int]:
    """Run A: step 8 late once and corrected once (so done twice), a unit's
    file returned, a unit closed; run B: step 8 late."""
    a = await to_letter(
        office, "TW I", late_minutes=60, return_unit=True, close_unit=True, correction=True
    )
    await use_letter(office, a)
    await finish(office, a)
    b = await to_letter(office, "TW II", late_minutes=120)
    await use_letter(office, b)
    await finish(office, b)
    return [a, b]


@dataclass
class Said:
    """What the log says about one step."""

    done: int = 0
    late: list[float] = field(default_factory=list)
    returned: int = 0
    closed: int = 0


async def from_the_log(office: Office, run_ids: list[int]) -> dict[str, Said]:
    """What the event log says about each step, read here on its own."""
    async with office.db.session() as s:
        key_of = {
            rs.id: rs.step_key
            for rs in (await s.exec(select(RunStep).where(col(RunStep.run_id).in_(run_ids)))).all()
        }
        events = (
            await s.exec(select(Event).where(col(Event.run_id).in_(run_ids)).order_by(Event.seq))
        ).all()
    said: dict[str, Said] = {}
    for ev in events:
        key = key_of.get(ev.details.get("run_step_id"))
        if key is None:
            continue
        entry = said.setdefault(key, Said())
        if ev.kind == "step_done":
            entry.done += 1
            if ev.details["late_minutes"]:
                entry.late.append(ev.details["late_minutes"])
            entry.returned += ev.details["state"] == "returned"
        elif ev.kind == "file_returned":
            entry.returned += 1
        elif ev.kind == "unit_closed":
            entry.closed += 1
    return said


async def test_the_marks_are_what_the_event_log_says(office: Office) -> None:
    runs = await walk_two_runs(office)
    said = await from_the_log(office, runs)
    async with office.db.session() as s:
        from bot.models import Run

        run_rows = [await s.get(Run, r) for r in runs]
    [form] = await monitor(office.engine, [r for r in run_rows if r], "Tahun 2026")
    report = await monitoring_report(
        office.engine, OfficeConfig(), [r for r in run_rows if r], "Tahun 2026"
    )
    assert len(form.steps) == 15
    bad_steps = set()
    for mark in form.steps:
        entry = said.get(mark.key, Said())
        assert (mark.done, mark.late_minutes) == (entry.done, entry.late), mark.key
        assert (mark.returned, mark.closed_units) == (entry.returned, entry.closed), mark.key
        bad = bool(entry.late or entry.returned or entry.closed)
        assert mark.good is (None if not entry.done and not bad else not bad), mark.key
        if bad:
            bad_steps.add(mark.number)
    # The walk made these: step 6 (a unit closed, a file returned), step 8
    # (late on 2 of its 3 finishes), step 10 (a correction).
    assert bad_steps == {6, 8, 10}, bad_steps
    step8 = next(m for m in form.steps if m.number == 8)
    assert (step8.done, step8.late) == (3, 2)
    average = minutes_text(sum(step8.late_minutes) / 2)

    # The workbook's Monitoring sheet says the same, in words.
    book = openpyxl.load_workbook(io.BytesIO(report.workbook))
    rows = {r[0]: r for r in book["Monitoring"].iter_rows(min_row=7, values_only=True) if r[0]}
    assert len(rows) == 15
    for number, row in rows.items():
        expected = "Tidak berjalan dengan baik" if number in bad_steps else "Berjalan dengan baik"
        assert row[2] == expected, (number, row)
        assert row[4] is None  # Tindakan: for the evaluator
    assert rows[8][3] == f"rata-rata terlambat {average} pada 2 dari 3 kegiatan"
    assert "1 unit ditutup tanpa kiriman" in rows[6][3] and "dikembalikan" in rows[6][3]
    assert rows[10][3] == "dikembalikan 1 kali"
    assert rows[1][3] == "selesai dalam waktu standar pada 2 dari 2 kegiatan"
    assert book["Grafik"]._images  # the chart is in the workbook
    assert report.charts[0].startswith(b"\x89PNG")

    # The DOCX: a tick in the right column for each step.
    table = docx.Document(io.BytesIO(report.document)).tables[0]
    ticks = {}
    for row in table.rows[2:]:
        cells = [c.text for c in row.cells]
        if cells[0].isdigit():
            ticks[int(cells[0])] = (cells[2], cells[3])
    assert len(ticks) == 15
    for number, (good, not_good) in ticks.items():
        assert (not_good == "✓") is (number in bad_steps) and (good == "✓") is not (
            number in bad_steps
        ), number

    # One run's monev workbook has its own form and chart.
    book = openpyxl.load_workbook(io.BytesIO(await run_report(office.engine, runs[1], "Kantor")))
    assert {"Ringkasan", "Langkah", "Berkas", "Peristiwa", "Monitoring", "Grafik"} <= set(
        book.sheetnames
    )
    second = {r[0]: r for r in book["Monitoring"].iter_rows(min_row=7, values_only=True)}
    assert second[8][2] == "Tidak berjalan dengan baik" and second[8][3].endswith(
        "1 dari 1 kegiatan"
    )
    assert second[10][2] == "Berjalan dengan baik"  # the correction was in the other run
    assert second[11][2] == "-" and second[11][3] == "belum dilaksanakan dalam periode ini"

    # A period: the runs started in it.
    e = office.engine
    year = await period_monitoring(e, OfficeConfig(), date(2026, 1, 1), date(2026, 12, 31))
    assert [r.id for f in year.forms for r in f.runs] == runs
    empty = await period_monitoring(e, OfficeConfig(), date(2025, 1, 1), date(2025, 12, 31))
    assert empty.forms == []
