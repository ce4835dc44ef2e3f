"""Reminders, escalation and the morning digest, decided from the database.

`sweep` looks at every open step of every open run and queues what is owed
now. Every message has a key (step, person, level, sequence), so a sweep
that runs twice, or a timer and a sweep that fire together, queue it once.
Nothing goes out while the office is closed: what fell due then is sent at
the next opening, once per person per step, because only the latest
sequence number is queued.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database
from bot.engine import OWING, Engine, iso
from bot.errors import NotAllowed, NotFound, StepNotOpen
from bot.models import (
    Assignment,
    AssignmentState,
    Member,
    MemberRole,
    Run,
    RunState,
    RunStep,
    StepState,
)
from bot.office import OfficeConfig
from bot.sop import Action, Sop, Step

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    reminders: int = 0
    escalations: int = 0
    digests: int = 0


class Deadlines:
    def __init__(self, engine: Engine, office: OfficeConfig) -> None:
        self.engine = engine
        self.office = office

    @property
    def db(self) -> Database:
        return self.engine.db

    @property
    def calendar(self) -> WorkCalendar:
        return self.engine.calendar

    @property
    def clock(self) -> Clock:
        return self.engine.clock

    def supervisor_of(self, sop: Sop, role: str) -> str | None:
        if role in self.office.supervisors:
            return self.office.supervisors[role]
        return sop.roles[role].supervisor if role in sop.roles else None

    def _sequence(self, sop: Sop, step: Step, due_at: datetime, now: datetime) -> int:
        """How many repeat periods have passed since the step fell due."""
        repeat = sop.reminders_for(step).repeat_every
        if repeat:
            return int(self.calendar.working_minutes_between(due_at, now) // repeat)
        # Default: once each working day, at office opening.
        seq, day = 0, due_at.astimezone(self.calendar.tz).date()
        today = now.astimezone(self.calendar.tz).date()
        while day < today:
            day += timedelta(days=1)
            opening = self.calendar.opening_of_day(day)
            if opening is not None and opening <= now:
                seq += 1
        return seq

    def _escalate_after(self, sop: Sop, step: Step) -> int:
        return sop.reminders_for(step).escalate_after or step.waktu

    async def sweep(self) -> SweepResult:
        """Queue every reminder, escalation and digest owed at this moment."""
        result = SweepResult()
        now = self.clock.now()
        if not self.calendar.is_open(now):
            return result
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    select(RunStep.id)
                    .join(Run, col(Run.id) == col(RunStep.run_id))
                    .where(
                        Run.state == RunState.open,
                        col(Run.reminders_paused).is_(False),
                        RunStep.state == StepState.open,
                        col(RunStep.due_at) <= now,
                    )
                )
            ).all()
        for run_step_id in rows:
            try:
                r, e = await self._remind_step(run_step_id or 0, now)
            except IntegrityError:
                # Another sweep queued the same keys at the same moment.
                continue
            result.reminders += r
            result.escalations += e
        with suppress(IntegrityError):  # another sweep queued today's digest
            result.digests = await self._digest(now)
        return result

    async def _remind_step(self, run_step_id: int, now: datetime) -> tuple[int, int]:
        engine = self.engine
        reminders = escalations = 0
        async with self.db.transaction() as s:
            rs = await s.get(RunStep, run_step_id)
            if rs is None or rs.state != StepState.open or rs.due_at is None:
                return 0, 0
            run = await s.get(Run, rs.run_id)
            assert run is not None
            sop = engine.sops.get(run.sop_key)
            step = sop.step(rs.step_key)
            settings = sop.reminders_for(step)
            if not settings.enabled:
                return 0, 0
            late = round(self.calendar.working_minutes_between(rs.due_at, now), 1)
            seq = self._sequence(sop, step, rs.due_at, now)
            escalate = late >= self._escalate_after(sop, step)
            assignments = (
                await s.exec(
                    select(Assignment).where(
                        Assignment.run_step_id == rs.id, col(Assignment.state).in_(list(OWING))
                    )
                )
            ).all()
            owing_by_boss: dict[str, list[dict[str, object]]] = {}
            step_context = engine._step_context(run, sop, step, rs)
            targets = [(a, step, rs) for a in assignments]
            if step.action == Action.validate and step.collection:
                # Units whose files were sent back owe a new upload to the collection.
                collect_rs = await engine._latest_step(s, run, step.collection)
                if collect_rs is not None:
                    returned = (
                        await s.exec(
                            select(Assignment).where(
                                Assignment.run_step_id == collect_rs.id,
                                Assignment.state == AssignmentState.returned,
                            )
                        )
                    ).all()
                    targets += [(a, sop.step(collect_rs.step_key), collect_rs) for a in returned]
            reminded: set[tuple[int, int, int | None]] = set()  # one per person, step, unit
            for a, owed_step, owed_rs in targets:
                context = {
                    **engine._step_context(run, sop, owed_step, owed_rs),
                    "due_at": iso(rs.due_at),
                }
                unit = await engine._unit_name(s, a.unit_id)
                members = await engine._assignees(s, a)
                actions = [t.as_dict() for t in engine._actions(owed_step, owed_rs, a)]
                for m in members:
                    if (m.id or 0, owed_rs.id or 0, a.unit_id) in reminded:
                        continue
                    reminded.add((m.id or 0, owed_rs.id or 0, a.unit_id))
                    key = f"remind:{rs.id}:{a.id}:{m.id}:1:{seq}"
                    queued = await engine._notify(
                        s,
                        m.id or 0,
                        "reminder",
                        key,
                        {
                            **context,
                            "unit_name": unit,
                            "late_minutes": late,
                            "seq": seq,
                            "actions": actions,
                        },
                        run=run,
                        run_step_id=rs.id,
                        assignment_id=a.id,
                    )
                    if queued:
                        reminders += 1
                        await engine._event(
                            s,
                            "reminder",
                            run=run,
                            actor_id=None,
                            run_step_id=rs.id,
                            step=step.number,
                            member_id=m.id,
                            name=m.name,
                            unit=unit,
                            seq=seq,
                            late_minutes=late,
                        )
                boss_role = self.supervisor_of(sop, a.role)
                if escalate and boss_role:
                    owing_by_boss.setdefault(boss_role, []).append(
                        {
                            "role_name": sop.roles[a.role].name,
                            "unit_name": unit,
                            "names": [m.name for m in members],
                        }
                    )
            # One escalation per supervisor and step, naming everyone late.
            for boss_role, owing in owing_by_boss.items():
                for boss in await engine._holders(s, boss_role):
                    queued = await engine._notify(
                        s,
                        boss.id or 0,
                        "escalation",
                        f"escalate:{rs.id}:{boss.id}:2:0",
                        {**step_context, "late_minutes": late, "owing": owing},
                        run=run,
                        run_step_id=rs.id,
                    )
                    if queued:
                        escalations += 1
                        await engine._event(
                            s,
                            "escalation",
                            run=run,
                            actor_id=None,
                            run_step_id=rs.id,
                            step=step.number,
                            member_id=boss.id,
                            name=boss.name,
                            owing=owing,
                            late_minutes=late,
                        )
        return reminders, escalations

    async def _digest(self, now: datetime) -> int:
        """The morning summary for the digest roles (office file), once a day."""
        today = now.astimezone(self.calendar.tz).date()
        statuses = await self.engine.run_status()
        end_of_day = self.calendar.intervals(today)
        day_end = end_of_day[-1][1] if end_of_day else now
        runs = []
        for run in statuses:
            open_steps = [st for st in run.steps if st.state == "open"]
            runs.append(
                {
                    "title": run.title,
                    "paused": run.reminders_paused,
                    "late": [
                        {
                            "number": st.number,
                            "uraian": st.uraian,
                            "actors": st.actors,
                            "late_minutes": st.late_minutes,
                            "pending_units": st.pending_units,
                        }
                        for st in open_steps
                        if st.late_minutes
                    ],
                    "due_today": [
                        {
                            "number": st.number,
                            "uraian": st.uraian,
                            "actors": st.actors,
                            "due_at": iso(st.due_at),
                        }
                        for st in open_steps
                        if not st.late_minutes and st.due_at and st.due_at <= day_end
                    ],
                    "open": len(open_steps),
                }
            )
        count = 0
        async with self.db.transaction() as s:
            ids = (
                await s.exec(
                    select(MemberRole.member_id)
                    .join(Member, col(Member.id) == col(MemberRole.member_id))
                    .where(
                        col(MemberRole.role).in_(self.office.digest_roles),
                        col(Member.active).is_(True),
                    )
                )
            ).all()
            for member_id in sorted(set(ids)):
                if await self.engine._notify(
                    s,
                    member_id,
                    "digest",
                    f"digest:{today.isoformat()}:{member_id}",
                    {"date": iso(now), "runs": runs},
                ):
                    count += 1
        return count

    async def next_moment(self) -> datetime | None:
        """The next time a sweep has something to do: a due time, an
        escalation, or the next office opening while anything is late."""
        now = self.clock.now()
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    select(RunStep, Run)
                    .join(Run, col(Run.id) == col(RunStep.run_id))
                    .where(
                        Run.state == RunState.open,
                        col(Run.reminders_paused).is_(False),
                        RunStep.state == StepState.open,
                    )
                )
            ).all()
        moments = []
        for rs, run in rows:
            if rs.due_at is None:
                continue
            sop = self.engine.sops.get(run.sop_key)
            step = sop.step(rs.step_key)
            if rs.due_at > now:
                moments.append(rs.due_at)
            else:
                escalation = self.calendar.add_working_minutes(
                    rs.due_at, self._escalate_after(sop, step)
                )
                if escalation > now:
                    moments.append(escalation)
        moments.append(self.calendar.next_opening(now + timedelta(minutes=1)))
        return min(moments) if moments else None

    # ------------------------------------------------------------ admin controls

    async def move_due(self, actor_id: int, run_step_id: int, due_at: datetime) -> RunStep:
        """An admin moves a step's due time; recorded with the old value."""
        engine = self.engine
        async with self.db.transaction() as s:
            await self._require_admin(s, actor_id)
            rs = await s.get(RunStep, run_step_id)
            if rs is None:
                raise NotFound("step")
            run = await engine._lock_run(s, rs.run_id)
            await s.refresh(rs)
            if rs.state != StepState.open:
                raise StepNotOpen()
            old = rs.due_at
            rs.due_at = due_at
            s.add(rs)
            await engine._event(
                s,
                "due_moved",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                step=rs.number,
                old=iso(old),
                new=iso(due_at),
            )
            return rs

    async def pause(self, actor_id: int, run_id: int, paused: bool) -> Run:
        """Pause or resume a run's reminders (the head is travelling)."""
        engine = self.engine
        async with self.db.transaction() as s:
            await self._require_admin(s, actor_id)
            run = await engine._lock_run(s, run_id)
            if run.reminders_paused == paused:
                return run
            run.reminders_paused = paused
            s.add(run)
            await engine._event(
                s, "reminders_paused" if paused else "reminders_resumed", run=run, actor_id=actor_id
            )
            return run

    async def _require_admin(self, s, actor_id: int) -> None:  # type: ignore[no-untyped-def]
        await self.engine._member(s, actor_id)
        roles = {r.role for r in await self.engine._roles(s, actor_id)}
        if "admin" not in roles:
            raise NotAllowed(roles=["admin"])
