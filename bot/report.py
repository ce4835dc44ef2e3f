"""The monitoring and evaluation (monev) report of a run, as a workbook.

The SOP's waktu is a service standard; what a monev reports on is the time
each step actually took against it, who acted, which files were received
and how they were judged. The layout and headings are a document template
(templates/documents/laporan-monev.xlsx); this module fills in the rows.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import partial
from typing import Any

from sqlmodel import col, select

from bot.audit import verify_chain
from bot.documents.chart import render_chart
from bot.documents.form import add_form_sheets, form_docx
from bot.documents.monitoring import Monitoring, monitor, runs_between
from bot.errors import InvalidInput, NotFound
from bot.models import Event, Member, Run, RunStep, StoredFile, Unit
from bot.office import OfficeConfig
from bot.run import Engine
from bot.run.reads import role_name
from bot.sop import Action
from bot.sop.loader import fingerprint
from bot.texts import TEMPLATES_DIR, Texts, plain

TEMPLATE = TEMPLATES_DIR / "documents" / "laporan-monev.xlsx"


async def member_report(
    engine: Engine, actor_id: int, run_id: int | None, office: OfficeConfig
) -> tuple[Run, bytes]:
    """The monev workbook as a member asks for it (/laporan): only the
    office's report roles and admins may; the latest run unless one is named."""
    await engine.rules.require_role(actor_id, office.report_roles)
    runs = await engine.queries.runs(open_only=False)
    if run_id is None:
        run = runs[0] if runs else None
    else:
        run = next((r for r in runs if r.id == run_id), None)
    if run is None:
        raise NotFound("run")
    return run, await run_report(engine, run.id or 0, office.name)


async def run_report(engine: Engine, run_id: int, office_name: str) -> bytes:
    """The filled workbook for one run."""
    tz = engine.calendar.tz

    def local(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%d-%m-%Y %H:%M") if moment else ""

    async with engine.db.session() as s:
        run = await s.get(Run, run_id)
        if run is None:
            raise NotFound("run")
        sop, own = await engine.definitions.resolve(s, run)
        names = {m.id: m.name for m in (await s.exec(select(Member))).all()}
        units = {u.id: u.name for u in (await s.exec(select(Unit))).all()}
        steps = (
            await s.exec(
                select(RunStep)
                .where(RunStep.run_id == run_id)
                .order_by(
                    col(RunStep.opened_at).is_(None), col(RunStep.opened_at), col(RunStep.number)
                )
            )
        ).all()
        files = (
            await s.exec(
                select(StoredFile).where(StoredFile.run_id == run_id).order_by(col(StoredFile.id))
            )
        ).all()
        events = (
            await s.exec(select(Event).where(Event.run_id == run_id).order_by(col(Event.seq)))
        ).all()
        chain = await verify_chain(s)
        now = engine.clock.now()
        step_times = engine.reads.step_times
        times = {rs.id: await step_times(s, run, sop.step(rs.step_key), rs, now) for rs in steps}

    # Roles named as the run's own SOP names them, in the event words too.
    texts = Texts(engine.calendar.config.timezone, role_name=partial(role_name, sop))
    event_line = texts.env.get_template("event.html.j2")
    labels = sop.outcome_labels()
    # One wording of outcomes for chat and report (templates/outcome.html.j2).
    # Jinja2 types a template module without its macros: the ignore below.
    hasil = texts.env.get_template("outcome.html.j2").module.hasil  # type: ignore[attr-defined]

    def described(event: Event) -> str:
        """The event as the history page words it, without its HTML."""
        return plain(event_line.render(e=event, outcome_labels=labels)).strip()

    words = texts.env.get_template("documents/report_words.txt.j2").module

    def word(name: str, *args: Any) -> str:
        return plain(str(getattr(words, name)(*args))).strip()

    def outcome(rs: RunStep) -> str:
        if not rs.outcome:
            return ""
        return plain(str(hasil(rs.outcome, labels.get(f"{rs.number}:{rs.outcome}")))).strip()

    from openpyxl import load_workbook  # when a report is made (see bot/workbook.py)

    book = load_workbook(TEMPLATE)
    used_total = 0.0
    late_steps = []
    sheet = book["Langkah"]
    for rs in steps:
        step = sop.step(rs.step_key)
        used, late = times[rs.id]
        if used is not None:
            used_total += used
        if late:
            late_steps.append(str(rs.number))
        sheet.append(
            [
                rs.number,
                step.uraian,
                ", ".join(sop.roles[r].name for r in step.actors),
                rs.iteration,
                word("state", rs.state.value),
                local(rs.opened_at),
                local(rs.due_at),
                local(rs.done_at),
                names.get(rs.done_by or 0, ""),
                step.waktu,
                round(used, 1) if used is not None else None,
                round(late, 1) if late else None,
                outcome(rs),
                rs.note or "",
            ]
        )

    sheet = book["Berkas"]
    step_numbers = {rs.id: rs.number for rs in steps}
    # Only a collection with a reviewer judges its files; the others' stay "received".
    reviewed = {
        rs.id
        for rs in steps
        if sop.step(rs.step_key).action == Action.collect and sop.step(rs.step_key).reviewer
    }
    for n, f in enumerate(files, start=1):
        sheet.append(
            [
                n,
                step_numbers.get(f.run_step_id),
                units.get(f.unit_id or 0, ""),
                f.original_name,
                f.version,
                word("kind", f.kind),
                f.size,
                f.sha256,
                names.get(f.uploader_id, ""),
                local(f.received_at),
                word("review", f.review_state.value, f.run_step_id in reviewed),
                f.review_note or "",
            ]
        )
    sheet = book["Peristiwa"]
    for e in events:
        sheet.append(
            [
                e.seq,
                local(e.at),
                described(e),
                names.get(e.actor_id or 0, ""),
                json.dumps(_in_zone(e.details, tz), ensure_ascii=False),
                e.hash,
            ]
        )
    # The monitoring form of this run, and its chart (bot/documents/).
    mword = monitoring_words(engine)
    [form] = await monitor(engine, [run], mword("period_run", run.title))
    add_form_sheets(book, form, render_chart(form, mword), mword)
    summary = book["Ringkasan"]
    values: list[str | int] = [
        office_name,
        sop.name,
        run.title,
        word("state", run.state.value),
        local(run.started_at),
        local(run.ended_at),
        sop.total_waktu,
        round(used_total),
        word("late_steps", list(dict.fromkeys(late_steps))),
        len(files),
        word("chain", chain.ok, chain.broken_seq, chain.reason),
        word("definition", sop.version, run.sop_version, own, fingerprint(sop)),
    ]
    for row, value in enumerate(values, start=3):
        summary.cell(row=row, column=2, value=value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def monitoring_words(engine: Engine) -> Callable[..., str]:
    """The monitoring form's and chart's words, as plain text."""
    texts = Texts(engine.calendar.config.timezone)
    words = texts.env.get_template("documents/monitoring_words.txt.j2").module

    def word(name: str, *args: Any) -> str:
        return plain(str(getattr(words, name)(*args))).strip()

    return word


@dataclass(frozen=True)
class MonitoringReport:
    """The monitoring form of some runs: as a workbook, a DOCX and charts."""

    period: str
    forms: list[Monitoring]
    charts: list[bytes]
    workbook: bytes
    document: bytes


async def monitoring_report(
    engine: Engine, office: OfficeConfig, runs: list[Run], period: str
) -> MonitoringReport:
    """One form per SOP among `runs` (a run, or all runs of a period); no
    documents (empty bytes) when there are no runs to fill a form from."""
    word = monitoring_words(engine)
    forms = await monitor(engine, runs, period)
    if not forms:
        return MonitoringReport(period, [], [], b"", b"")
    charts = [render_chart(form, word) for form in forms]
    from openpyxl import Workbook

    book = Workbook()
    if book.active is not None:
        book.remove(book.active)
    for form, chart in zip(forms, charts, strict=True):
        add_form_sheets(book, form, chart, word)
    out = io.BytesIO()
    book.save(out)
    today = engine.clock.now().astimezone(engine.calendar.tz).date()
    document = form_docx(forms, charts, office, today, word)
    return MonitoringReport(period, forms, charts, out.getvalue(), document)


def parse_period(text: str, word: Callable[..., str]) -> tuple[date, date, str] | None:
    """'2026' (the year) or '2026-1' / '2026-2' (a semester: the form is
    filled every six months); None when `text` is neither."""
    year_text, _, half_text = text.strip().partition("-")
    if not (len(year_text) == 4 and year_text.isdigit() and 2000 <= int(year_text) <= 2100):
        return None
    year = int(year_text)
    if not half_text:
        return date(year, 1, 1), date(year, 12, 31), word("period_year", year)
    if half_text not in ("1", "2"):
        return None
    if half_text == "1":
        return date(year, 1, 1), date(year, 6, 30), word("period_half", year, 1)
    return date(year, 7, 1), date(year, 12, 31), word("period_half", year, 2)


async def period_monitoring(
    engine: Engine, office: OfficeConfig, start: date, end: date, period: str | None = None
) -> MonitoringReport:
    """All runs started from `start` to `end` (`sopbot report --from --to`)."""
    if end < start:
        raise InvalidInput("period_format")
    word = monitoring_words(engine)
    runs = await runs_between(engine, start, end)
    label = period or word("period_dates", start.strftime("%d-%m-%Y"), end.strftime("%d-%m-%Y"))
    return await monitoring_report(engine, office, runs, label)


async def member_monitoring(
    engine: Engine, actor_id: int, text: str, office: OfficeConfig
) -> MonitoringReport:
    """/laporan 2026: the form of a year's (or semester's) runs, for the
    office's report roles and admins, as the run report."""
    await engine.rules.require_role(actor_id, office.report_roles)
    found = parse_period(text, monitoring_words(engine))
    if found is None:
        raise InvalidInput("period_format")
    start, end, label = found
    return await period_monitoring(engine, office, start, end, label)


_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$")


def _in_zone(value: Any, tz: tzinfo) -> Any:
    """The event's details as data, with every moment (an ISO time with its
    offset, as the engine records them in UTC) given in the office's zone,
    like every other time in the report."""
    if isinstance(value, dict):
        return {k: _in_zone(v, tz) for k, v in value.items()}
    if isinstance(value, list):
        return [_in_zone(v, tz) for v in value]
    if isinstance(value, str) and _ISO_MOMENT.match(value):
        try:
            return datetime.fromisoformat(value).astimezone(tz).isoformat()
        except ValueError:
            return value
    return value
