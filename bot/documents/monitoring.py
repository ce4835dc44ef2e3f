"""The SOP's monitoring form ("Monitoring Pelaksanaan SOP AP", Permenpan-RB
35/2012), filled from what the bot recorded.

Each step of the SOP gets a mark: "tidak berjalan dengan baik" when, in the
runs looked at, it went over its standard time, was returned (a decision
marked it so, or a unit's file was sent back) or had units closed without a
delivery; "berjalan dengan baik" when it was done and none of that happened;
no mark when it was never done. The marks and their figures come from the
event log (step_done with its late_minutes and state, file_returned,
unit_closed), the record an auditor checks; the working time each step took
(for the chart) is the engine's one reckoning (Reads.step_times). The
"Tindakan yang harus diambil" column is left for the evaluator.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlmodel import col, select

from bot.models import Event, Run, RunStep, StepState
from bot.run import Engine
from bot.sop import Sop


@dataclass
class StepMark:
    """One row of the form: a step and what the record says about it."""

    number: int
    key: str
    prosedur: str
    waktu: int  # the standard, in working minutes
    done: int = 0  # times it was finished (each a "kegiatan")
    late: int = 0  # of which over the standard time
    late_minutes: list[float] = field(default_factory=list)
    returned: int = 0
    closed_units: int = 0
    used: list[float] = field(default_factory=list)  # working minutes, per finish

    @property
    def good(self) -> bool | None:
        """The mark: None when the step was never done."""
        if not self.done and not (self.returned or self.closed_units):
            return None
        return not (self.late or self.returned or self.closed_units)

    @property
    def late_average(self) -> float:
        return sum(self.late_minutes) / len(self.late_minutes) if self.late_minutes else 0.0

    @property
    def used_average(self) -> float | None:
        return sum(self.used) / len(self.used) if self.used else None


@dataclass
class Monitoring:
    """The form for one SOP over some runs."""

    sop_name: str
    period: str
    runs: list[Run]
    steps: list[StepMark]


async def monitor(engine: Engine, runs: list[Run], period: str) -> list[Monitoring]:
    """The forms (one per SOP among `runs`) filled from the event log."""
    forms: list[Monitoring] = []
    by_sop: dict[str, list[Run]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.id or 0):
        by_sop[run.sop_key].append(run)
    now = engine.clock.now()
    async with engine.db.session() as s:
        for group in by_sop.values():
            # The latest run's definition names the steps; older runs' steps
            # are matched by key.
            sop: Sop
            sop, _ = await engine.definitions.resolve(s, group[-1])
            marks = {
                step.key: StepMark(step.number, step.key, step.uraian, step.waktu)
                for step in sop.steps
            }
            ids = [r.id for r in group]
            steps = (await s.exec(select(RunStep).where(col(RunStep.run_id).in_(ids)))).all()
            key_of = {rs.id: rs.step_key for rs in steps}
            events = (
                await s.exec(
                    select(Event)
                    .where(
                        col(Event.run_id).in_(ids),
                        col(Event.kind).in_(["step_done", "file_returned", "unit_closed"]),
                    )
                    .order_by(col(Event.seq))
                )
            ).all()
            for e in events:
                key = key_of.get(e.details.get("run_step_id")) or e.details.get("key")
                mark = marks.get(str(key))
                if mark is None:
                    continue
                if e.kind == "step_done":
                    mark.done += 1
                    late = float(e.details.get("late_minutes") or 0)
                    if late > 0:
                        mark.late += 1
                        mark.late_minutes.append(late)
                    if e.details.get("state") == StepState.returned.value:
                        mark.returned += 1
                elif e.kind == "file_returned":
                    mark.returned += 1
                else:
                    mark.closed_units += 1
            runs_by_id = {r.id: r for r in group}
            for rs in steps:
                mark = marks.get(rs.step_key)
                if mark is None or rs.done_at is None:
                    continue
                run_sop = await engine.kit.sop_of(s, runs_by_id[rs.run_id])
                used, _ = await engine.reads.step_times(
                    s, runs_by_id[rs.run_id], run_sop.step(rs.step_key), rs, now
                )
                if used is not None:
                    mark.used.append(used)
            forms.append(Monitoring(sop.name, period, group, list(marks.values())))
    return forms


async def runs_between(engine: Engine, start: date, end: date) -> list[Run]:
    """Runs started from `start` to `end` (office dates, both included)."""
    tz = engine.calendar.tz
    low = datetime.combine(start, time.min, tz)
    high = datetime.combine(end + timedelta(days=1), time.min, tz)
    async with engine.db.session() as s:
        return list(
            (
                await s.exec(
                    select(Run)
                    .where(col(Run.started_at) >= low, col(Run.started_at) < high)
                    .order_by(col(Run.id))
                )
            ).all()
        )
