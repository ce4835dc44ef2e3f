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
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database
from bot.digest import Digest
from bot.errors import NotFound, RunClosed
from bot.models import (
    Assignment,
    AssignmentState,
    Notification,
    OutboxState,
    Run,
    RunState,
    RunStep,
    StepState,
)
from bot.office import OfficeConfig
from bot.run import Engine
from bot.run.actions import step_actions
from bot.run.reads import role_name, step_context
from bot.sop import Action, Sop, Step
from bot.views import ADMIN, OWING, iso

log = logging.getLogger(__name__)

# Vacant-role warnings remembered by a process (the latest ones), so that a
# sweep every minute does not repeat them; an older one may be logged again.
WARNED_KEPT = 1024


@dataclass
class SweepResult:
    reminders: int = 0
    escalations: int = 0
    digests: int = 0
    errors: int = 0


def due_steps(now: datetime) -> SelectOfScalar[int | None]:
    """The open steps of running runs whose moment has come (RunStep.check_at):
    a range of the index on (state, check_at), however many steps are open
    and not yet due. The sweep's one read; tests check its query plan."""
    return (
        select(col(RunStep.id))
        .join(Run, col(Run.id) == col(RunStep.run_id))
        .where(
            RunStep.state == StepState.open,
            col(RunStep.check_at) <= now,
            Run.state == RunState.open,
            col(Run.reminders_paused).is_(False),
        )
        .order_by(col(RunStep.check_at), col(RunStep.id))
    )


def next_check(now: datetime) -> SelectOfScalar[datetime | None]:
    """The earliest moment after `now` that an open step needs the sweep:
    the first row of the same index, in order."""
    return (
        select(col(RunStep.check_at))
        .join(Run, col(Run.id) == col(RunStep.run_id))
        .where(
            RunStep.state == StepState.open,
            col(RunStep.check_at) > now,
            Run.state == RunState.open,
            col(Run.reminders_paused).is_(False),
        )
        .order_by(col(RunStep.check_at))
        .limit(1)
    )


def due_stamp(due_at: datetime) -> int:
    """The due time as it appears in keys (seconds since the epoch)."""
    return int(due_at.timestamp())


class Deadlines:
    """What is owed at this moment (reminders, escalations, the digest),
    queued once per key: timers and sweeps may call it as often as they like."""

    def __init__(self, engine: Engine, office: OfficeConfig) -> None:
        self.engine = engine
        self.office = office
        self.digest = Digest(engine, office)
        # Warnings already recorded by this process (vacant roles), so a sweep
        # every minute does not repeat them.
        # Bounded: a process that runs for months must not keep every step's memo.
        self._warned: deque[str] = deque(maxlen=WARNED_KEPT)

    @property
    def db(self) -> Database:
        return self.engine.kit.db

    @property
    def calendar(self) -> WorkCalendar:
        return self.engine.kit.calendar

    @property
    def clock(self) -> Clock:
        return self.engine.kit.clock

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

    def _period_start(
        self, sop: Sop, step: Step, due_at: datetime, seq: int, now: datetime
    ) -> datetime:
        """When reminder number `seq` fell due: the due time for the first,
        then each repeat period, or (by default) today's opening."""
        if seq == 0:
            return due_at
        repeat = sop.reminders_for(step).repeat_every
        if repeat:
            return self.calendar.add_working_minutes(due_at, seq * repeat)
        today = now.astimezone(self.calendar.tz).date()
        return self.calendar.opening_of_day(today) or due_at

    async def _reminded_since(
        self, s: AsyncSession, member_id: int, rs: RunStep, a: Assignment, since: datetime
    ) -> bool:
        """Has this person had a reminder about this assignment since
        `since`, or is a sender sending one that it claimed since then? A
        reminder held overnight goes out at opening, just when the day's own
        one falls due: one of them is enough."""
        row = (
            await s.exec(
                select(Notification.id).where(
                    Notification.template == "reminder",
                    Notification.member_id == member_id,
                    Notification.run_step_id == rs.id,
                    Notification.assignment_id == a.id,
                    or_(
                        and_(
                            col(Notification.state) == OutboxState.sent,
                            col(Notification.sent_at) >= since,
                        ),
                        and_(
                            col(Notification.state) == OutboxState.pending,
                            col(Notification.sending_since) >= since,
                        ),
                    ),
                )
            )
        ).first()
        return row is not None

    def _escalate_after(self, sop: Sop, step: Step) -> int:
        return sop.reminders_for(step).escalate_after or step.waktu

    async def sweep(self) -> SweepResult:
        """Queue every reminder, escalation and digest owed at this moment.
        One step that fails (e.g. its definition changed under an open run)
        is logged and skipped; the other runs still get their reminders."""
        result = SweepResult()
        now = self.clock.now()
        try:
            # Albums complete at any hour: their review and receipt go out.
            await self.engine.albums.settle_albums()
        except Exception:
            log.exception("settling albums failed")
            result.errors += 1
        if not self.calendar.is_open(now):
            return result
        async with self.db.session() as s:
            rows = (await s.exec(due_steps(now))).all()
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
            result.digests = await self.digest.send(now)
        except IntegrityError:
            pass  # another sweep queued today's digest
        except Exception:
            log.exception("the morning digest failed")
            result.errors += 1
        return result

    async def _remind_step(self, run_step_id: int, now: datetime) -> tuple[int, int]:
        engine = self.engine
        reads = engine.reads
        reminders = escalations = 0
        async with self.db.transaction() as s:
            try:
                # Lock the run as engine commands do, then read the step again:
                # a command that closed it meanwhile is seen, not raced.
                run, rs = await reads.run_step(s, run_step_id)
            except (NotFound, RunClosed):
                return 0, 0
            if rs.state != StepState.open or rs.due_at is None:
                return 0, 0
            sop = await engine.kit.sop_of(s, run)
            step = sop.step(rs.step_key)
            settings = sop.reminders_for(step)
            # The next moment this step needs a sweep, kept whatever is sent now.
            rs.check_at = self.next_check(sop, step, rs.due_at, now)
            s.add(rs)
            if not settings.enabled:
                return 0, 0
            exact = self.calendar.working_minutes_between(rs.due_at, now)
            if exact < 1:
                # Past the due time but not yet a working minute late (due at
                # closing, now the next opening): a reminder would say
                # "0 menit"; the next sweep, a minute on, sends it. Exact
                # times are compared: the rounded figure is only for reading.
                return 0, 0
            late = round(exact, 1)
            seq = self._sequence(sop, step, rs.due_at, now)
            period = self._period_start(sop, step, rs.due_at, seq, now)
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
            this_step = step_context(run, sop, step, rs)
            targets = [(a, step, rs) for a in assignments]
            if step.action == Action.validate and step.collection:
                # Units whose files were sent back owe a new upload to the collection.
                collect_rs = await reads.latest_step(s, run, step.collection)
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
                    **step_context(run, sop, owed_step, owed_rs),
                    "due_at": iso(rs.due_at),
                }
                unit = await reads.unit_name(s, a.unit_id)
                members = await reads.assignees(s, a)
                actions = [t.as_dict() for t in step_actions(owed_step, owed_rs, a)]
                for m in members:
                    if (m.id or 0, owed_rs.id or 0, a.unit_id) in reminded:
                        continue
                    reminded.add((m.id or 0, owed_rs.id or 0, a.unit_id))
                    if seq and await self._reminded_since(s, m.id or 0, rs, a, period):
                        continue
                    key = f"remind:{rs.id}:{stamp}:{a.id}:{m.id}:{seq}"
                    queued = await engine.messages.notify(
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
                        office_hours_only=True,
                    )
                    if queued:
                        reminders += 1
                        await engine.kit.event(
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
                    if exact >= level * after:
                        told.setdefault(
                            (level, boss_role),
                            [role_name(sop, r) for r in chain[: level - 1]],
                        )
                        owing_by_boss.setdefault((level, boss_role), []).append(
                            {
                                "role_name": role_name(sop, a.role),
                                "unit_name": unit,
                                "names": [m.name for m in members],
                            }
                        )
            # One escalation per level, supervisor and step, naming everyone late.
            for (level, boss_role), owing in owing_by_boss.items():
                context = {
                    **this_step,
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
        bosses = await engine.reads.holders(s, boss_role)
        vacant = not bosses
        if vacant:
            bosses = await engine.reads.holders(s, ADMIN)
            context = {**context, "vacant_role": role_name(sop, boss_role)}
        count = 0
        for boss in bosses:
            queued = await engine.messages.notify(
                s,
                boss.id or 0,
                "escalation",
                f"escalate:{rs.id}:{stamp}:{boss.id}:{level}",
                context,
                run=run,
                run_step_id=rs.id,
                office_hours_only=True,
            )
            if not queued:
                continue
            count += 1
            await engine.kit.event(
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
                if memo not in self._warned:
                    self._warned.append(memo)
                log.warning(
                    "escalation of step %s (run %s) to %s: nobody holds the role; %s",
                    step.number,
                    run.id,
                    boss_role,
                    "the admins were told" if count else "and there is no admin",
                )
                await engine.kit.event(
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

    def next_check(self, sop: Sop, step: Step, due_at: datetime, now: datetime) -> datetime | None:
        """When a step due at `due_at` next needs the sweep, seen at `now`:
        its first late minute (a reminder goes out once the step is a
        working minute late, not at due), then the next escalation level,
        the next repeat of its reminder, and the next day's opening (the
        default daily reminder). None when its reminders are off."""
        first_late = self.engine.kit.first_late(due_at)
        if first_late > now:
            return first_late
        settings = sop.reminders_for(step)
        if not settings.enabled:
            return None
        moments = [self._next_day_opening(now)]
        after = self._escalate_after(sop, step)
        levels = max(
            (len(self.escalation_chain(sop, step, role)) for role in step.actors), default=0
        )
        for level in range(1, levels + 1):
            moment = self.calendar.add_working_minutes(due_at, level * after)
            if moment > now:
                moments.append(moment)
                break
        repeat = settings.repeat_every
        if repeat:
            late = self.calendar.working_minutes_between(due_at, now)
            periods = int(late // repeat) + 1
            moments.append(self.calendar.add_working_minutes(due_at, periods * repeat))
        return min(moments)

    def _next_day_opening(self, now: datetime) -> datetime:
        tz = self.calendar.tz
        tomorrow = datetime.combine(
            now.astimezone(tz).date() + timedelta(days=1), datetime.min.time(), tzinfo=tz
        )
        return self.calendar.next_opening(tomorrow)

    async def next_moment(self) -> datetime | None:
        """The next time a sweep has something to do: the earliest moment a
        step needs a look (RunStep.check_at, one row of an index), an
        office opening (the digest, and what waited for it), an album's
        quiet moment."""
        now = self.clock.now()
        async with self.db.session() as s:
            first = (await s.exec(next_check(now))).first()
        moments = [self._next_day_opening(now)]
        if first is not None:
            moments.append(first)
        if not self.calendar.is_open(now):
            moments.append(self.calendar.next_opening(now))
        album = await self.engine.albums.album_due()
        if album is not None:
            moments.append(album)
        return min(moments)
