"""Reminders, escalation and the morning digest, decided from the database.

`sweep` looks at every open step of every open run and queues what is owed
now. Every message has a key (step, due time, person, level, sequence), so a
sweep that runs twice, or a timer and a sweep that fire together, queue it
once; the due time is in the key so that moving it starts the sequence
afresh. A newer reminder for the same step and person supersedes an older
one still pending, so one person gets one reminder per step however long the
sender was held up. Every queued row is office-hours-only: the sender
defers it to the next opening rather than send it in the evening, and drops
a reminder or escalation that is no longer owed when its turn comes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database
from bot.engine import Engine
from bot.errors import NotAllowed, NotFound, StepNotOpen
from bot.models import (
    Assignment,
    AssignmentState,
    Member,
    MemberRole,
    Notification,
    OutboxState,
    Run,
    RunState,
    RunStep,
    StepState,
)
from bot.office import OfficeConfig
from bot.outbox import drop
from bot.sop import Action, Sop, Step
from bot.views import ADMIN, OWING, iso

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    reminders: int = 0
    escalations: int = 0
    digests: int = 0
    errors: int = 0


def due_stamp(due_at: datetime) -> int:
    """The due time as it appears in keys (seconds since the epoch)."""
    return int(due_at.timestamp())


class Deadlines:
    """What is owed at this moment (reminders, escalations, the digest),
    queued once per key: timers and sweeps may call it as often as they like."""

    def __init__(self, engine: Engine, office: OfficeConfig) -> None:
        self.engine = engine
        self.office = office
        # Warnings already recorded by this process (vacant roles), so a sweep
        # every minute does not repeat them.
        self._warned: set[str] = set()

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

    def supervisor_chain(self, sop: Sop, role: str) -> list[str]:
        """The role's supervisor, theirs, and so on up (a loop stops it)."""
        chain: list[str] = []
        seen = {role}
        boss = self.supervisor_of(sop, role)
        while boss and boss not in seen:
            chain.append(boss)
            seen.add(boss)
            boss = self.supervisor_of(sop, boss)
        return chain

    def escalation_chain(self, sop: Sop, step: Step, role: str) -> list[str]:
        """The supervisors a late `role` escalates to, level 1 first."""
        chain = self.supervisor_chain(sop, role)
        levels = sop.reminders_for(step).escalation_levels
        return chain if levels is None else chain[:levels]

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

    def _role_name(self, sop: Sop, role: str) -> str:
        return sop.roles[role].name if role in sop.roles else role

    async def sweep(self) -> SweepResult:
        """Queue every reminder, escalation and digest owed at this moment.
        One step that fails (e.g. its definition changed under an open run)
        is logged and skipped; the other runs still get their reminders."""
        result = SweepResult()
        now = self.clock.now()
        try:
            # Albums complete at any hour: their review and receipt go out.
            await self.engine.settle_albums()
        except Exception:
            log.exception("settling albums failed")
            result.errors += 1
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
                        # Late means strictly after the due time.
                        col(RunStep.due_at) < now,
                    )
                    .order_by(col(RunStep.id))
                )
            ).all()
        for run_step_id in rows:
            try:
                r, e = await self._remind_step(run_step_id or 0, now)
            except IntegrityError:
                # Another sweep queued the same keys at the same moment.
                continue
            except Exception:
                log.exception("reminders for run step %s failed; other steps go on", run_step_id)
                result.errors += 1
                continue
            result.reminders += r
            result.escalations += e
        try:
            result.digests = await self._digest(now)
        except IntegrityError:
            pass  # another sweep queued today's digest
        except Exception:
            log.exception("the morning digest failed")
            result.errors += 1
        return result

    async def _queue(
        self,
        s: AsyncSession,
        member_id: int,
        template: str,
        key: str,
        context: dict[str, Any],
        *,
        run: Run | None = None,
        run_step_id: int | None = None,
        assignment_id: int | None = None,
    ) -> bool:
        """Queue an office-hours-only message once per key; older pending
        messages of the same kind to the same person about the same step
        (and assignment), not yet claimed by a sender, are dropped as
        superseded."""
        row = await self.engine._notify(
            s,
            member_id,
            template,
            key,
            context,
            run=run,
            run_step_id=run_step_id,
            assignment_id=assignment_id,
            office_hours_only=True,
        )
        if row is None:
            return False
        now = self.clock.now()
        older = (
            await s.exec(
                select(Notification).where(
                    Notification.state == OutboxState.pending,
                    # A row a sender has claimed may already be on its way:
                    # it is never superseded, or the log would deny a delivery.
                    col(Notification.sending_since).is_(None),
                    Notification.template == template,
                    Notification.member_id == member_id,
                    col(Notification.run_step_id).is_(None)
                    if run_step_id is None
                    else Notification.run_step_id == run_step_id,
                    col(Notification.assignment_id).is_(None)
                    if assignment_id is None
                    else Notification.assignment_id == assignment_id,
                    col(Notification.id) != row.id,
                )
            )
        ).all()
        for old in older:
            await drop(s, old, "superseded", now)
        return True

    async def _remind_step(self, run_step_id: int, now: datetime) -> tuple[int, int]:
        engine = self.engine
        reminders = escalations = 0
        async with self.db.transaction() as s:
            rs = await s.get(RunStep, run_step_id)
            if rs is None:
                return 0, 0
            # Lock the run as engine commands do, then read the step again: a
            # command that closed it meanwhile is seen, not raced (PostgreSQL).
            run = (await s.exec(select(Run).where(Run.id == rs.run_id).with_for_update())).first()
            await s.refresh(rs)
            if run is None or rs.state != StepState.open or rs.due_at is None:
                return 0, 0
            sop = await engine.definitions.for_run(s, run)
            step = sop.step(rs.step_key)
            settings = sop.reminders_for(step)
            if not settings.enabled:
                return 0, 0
            late = round(self.calendar.working_minutes_between(rs.due_at, now), 1)
            if late < 1:
                # Past the due time but not yet a working minute late (due at
                # closing, now the next opening): a reminder would say
                # "0 menit"; the next sweep, a minute on, sends it.
                return 0, 0
            seq = self._sequence(sop, step, rs.due_at, now)
            stamp = due_stamp(rs.due_at)
            after = self._escalate_after(sop, step)
            assignments = (
                await s.exec(
                    select(Assignment).where(
                        Assignment.run_step_id == rs.id, col(Assignment.state).in_(list(OWING))
                    )
                )
            ).all()
            # (level, supervising role) -> who is late, for one message each,
            # and the supervisors told at the levels below.
            owing_by_boss: dict[tuple[int, str], list[dict[str, object]]] = {}
            told: dict[tuple[int, str], list[str]] = {}
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
                    key = f"remind:{rs.id}:{stamp}:{a.id}:{m.id}:{seq}"
                    queued = await self._queue(
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
                chain = self.escalation_chain(sop, step, a.role)
                for level, boss_role in enumerate(chain, start=1):
                    if late >= level * after:
                        told.setdefault(
                            (level, boss_role),
                            [self._role_name(sop, r) for r in chain[: level - 1]],
                        )
                        owing_by_boss.setdefault((level, boss_role), []).append(
                            {
                                "role_name": self._role_name(sop, a.role),
                                "unit_name": unit,
                                "names": [m.name for m in members],
                            }
                        )
            # One escalation per level, supervisor and step, naming everyone late.
            for (level, boss_role), owing in owing_by_boss.items():
                context = {
                    **step_context,
                    "late_minutes": late,
                    "owing": owing,
                    "level": level,
                    "told": told[(level, boss_role)],
                }
                escalations += await self._escalate(
                    s, run, rs, step, sop, boss_role, level, stamp, late, context
                )
        return reminders, escalations

    async def _escalate(
        self,
        s: AsyncSession,
        run: Run,
        rs: RunStep,
        step: Step,
        sop: Sop,
        boss_role: str,
        level: int,
        stamp: int,
        late: float,
        context: dict[str, Any],
    ) -> int:
        """Queue one escalation to every holder of `boss_role`; when nobody
        holds it the admins are told instead, with a warning on record."""
        engine = self.engine
        bosses = await engine._holders(s, boss_role)
        vacant = not bosses
        if vacant:
            bosses = await engine._holders(s, ADMIN)
            context = {**context, "vacant_role": self._role_name(sop, boss_role)}
        count = 0
        for boss in bosses:
            queued = await self._queue(
                s,
                boss.id or 0,
                "escalation",
                f"escalate:{rs.id}:{stamp}:{boss.id}:{level}",
                context,
                run=run,
                run_step_id=rs.id,
            )
            if not queued:
                continue
            count += 1
            await engine._event(
                s,
                "escalation",
                run=run,
                actor_id=None,
                run_step_id=rs.id,
                step=step.number,
                member_id=boss.id,
                name=boss.name,
                level=level,
                role=boss_role,
                owing=context["owing"],
                late_minutes=late,
            )
        if vacant and (count or not bosses):
            memo = f"vacant:{rs.id}:{stamp}:{level}:{boss_role}"
            if count or memo not in self._warned:
                self._warned.add(memo)
                log.warning(
                    "escalation of step %s (run %s) to %s: nobody holds the role; %s",
                    step.number,
                    run.id,
                    boss_role,
                    "the admins were told" if count else "and there is no admin",
                )
                await engine._event(
                    s,
                    "escalation_vacant",
                    run=run,
                    actor_id=None,
                    run_step_id=rs.id,
                    step=step.number,
                    role=boss_role,
                    level=level,
                    admins_told=count,
                )
        return count

    async def _digest(self, now: datetime) -> int:
        """The morning summary for the digest roles (office file), once a day:
        each late or due step with the people who hold it."""
        today = now.astimezone(self.calendar.tz).date()
        statuses = await self.engine.run_status()
        if not statuses:
            return 0  # nothing runs: no digest that says so every morning
        end_of_day = self.calendar.intervals(today)
        day_end = end_of_day[-1][1] if end_of_day else now
        holders = await self.engine.open_holders()
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
                            "holders": holders.get(st.run_step_id, []),
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
                            "holders": holders.get(st.run_step_id, []),
                        }
                        for st in open_steps
                        if not st.late_minutes and st.due_at and st.due_at <= day_end
                    ],
                    "open": len(open_steps),
                }
            )
        count = 0
        async with self.db.transaction() as s:
            rows = (
                await s.exec(
                    select(MemberRole.member_id, MemberRole.role)
                    .join(Member, col(Member.id) == col(MemberRole.member_id))
                    .where(
                        col(MemberRole.role).in_(self.office.digest_roles),
                        col(Member.active).is_(True),
                    )
                )
            ).all()
            held = {role for _, role in rows}
            for role in self.office.digest_roles:
                memo = f"digest:{today.isoformat()}:{role}"
                if role not in held and memo not in self._warned:
                    self._warned.add(memo)
                    log.warning("morning digest: nobody holds the digest role %r", role)
                    await self.engine._event(
                        s, "digest_role_vacant", run=None, actor_id=None, role=role
                    )
            for member_id in sorted({member_id for member_id, _ in rows}):
                if await self._queue(
                    s,
                    member_id,
                    "digest",
                    f"digest:{today.isoformat()}:{member_id}",
                    {"date": iso(now), "runs": runs},
                ):
                    count += 1
        return count

    async def next_moment(self) -> datetime | None:
        """The next time a sweep has something to do: a due time, the next
        escalation level or repeat of a late step, or an office opening (the
        digest, and what waited for it)."""
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
            # Each run's own definition (looked up while the session is open).
            sops = {run.id: await self.engine.definitions.for_run(s, run) for _, run in rows}
        tz = self.calendar.tz
        tomorrow = datetime.combine(
            now.astimezone(tz).date() + timedelta(days=1), datetime.min.time(), tzinfo=tz
        )
        moments = [self.calendar.next_opening(tomorrow)]
        if not self.calendar.is_open(now):
            moments.append(self.calendar.next_opening(now))
        for rs, run in rows:
            if rs.due_at is None:
                continue
            # A reminder goes out once the step is a working minute late, not at due.
            first_late = self.calendar.add_working_minutes(rs.due_at, 1)
            if first_late > now:
                moments.append(first_late)
                continue
            try:
                sop = sops[run.id]
                step = sop.step(rs.step_key)
            except KeyError:
                log.warning("run %s step %s: not in its SOP definition", run.id, rs.step_key)
                continue
            after = self._escalate_after(sop, step)
            levels = max(
                (len(self.escalation_chain(sop, step, role)) for role in step.actors), default=0
            )
            for level in range(1, levels + 1):
                moment = self.calendar.add_working_minutes(rs.due_at, level * after)
                if moment > now:
                    moments.append(moment)
                    break
            repeat = sop.reminders_for(step).repeat_every
            if repeat:
                # The default (daily) repeat falls on tomorrow's opening, above.
                late = self.calendar.working_minutes_between(rs.due_at, now)
                periods = int(late // repeat) + 1
                moments.append(self.calendar.add_working_minutes(rs.due_at, periods * repeat))
        album = await self.engine.album_due()
        if album is not None:
            moments.append(album)
        return min(moments)

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
