"""Opening and finishing steps, and finishing a run: the moves that several
commands share. Every function works inside the caller's transaction, after
the caller's rule allowed the act.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import (
    Assignment,
    AssignmentState,
    Member,
    Notification,
    Run,
    RunState,
    RunStep,
    StepState,
    Unit,
)
from bot.run.drafts import Drafts
from bot.run.kit import RunKit
from bot.run.messages import Messages, TaskReason
from bot.run.reads import Reads, assignments_of_open_runs
from bot.run.rules import Rules
from bot.run.settle import Settled, step_settled
from bot.sop import Action, Sop, Step
from bot.views import OWING, iso


class Flow:
    def __init__(
        self,
        kit: RunKit,
        reads: Reads,
        rules: Rules,
        messages: Messages,
        drafts: Drafts,
    ) -> None:
        self.kit = kit
        self.reads = reads
        self.rules = rules
        self.messages = messages
        self.drafts = drafts

    # ------------------------------------------------------------------ open

    async def open_step(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        key: str,
        *,
        actor_id: int | None = None,
        send_tasks: bool = True,
    ) -> RunStep:
        """Open a step: its due time, its assignments, everyone's task.
        Without `send_tasks` nobody is told: the one who opened it acts on
        it at once (the head starting a run is step 1)."""
        step = sop.step(key)
        now = self.kit.clock.now()
        rs = (
            await s.exec(
                select(RunStep).where(
                    RunStep.run_id == run.id,
                    RunStep.step_key == key,
                    RunStep.state == StepState.waiting,
                )
            )
        ).first()
        if rs is None:
            last = (
                await s.exec(
                    select(func.max(RunStep.iteration)).where(
                        RunStep.run_id == run.id, RunStep.step_key == key
                    )
                )
            ).one()
            rs = RunStep(
                run_id=run.id or 0, step_key=key, number=step.number, iteration=(last or 0) + 1
            )
        rs.state = StepState.open
        rs.opened_at = now
        meeting = await self.reads.meeting_of(s, run, step)
        start = max(now, meeting.starts_at) if meeting is not None else now
        rs.due_at = self.kit.calendar.add_working_minutes(start, step.waktu)
        rs.check_at = self.kit.first_late(rs.due_at)  # the deadline sweep's first look
        s.add(rs)
        await s.flush()
        await self.kit.event(
            s,
            "step_opened",
            run=run,
            actor_id=None,
            run_step_id=rs.id,
            step=step.number,
            key=key,
            iteration=rs.iteration,
            due_at=iso(rs.due_at),
        )
        assignments = await self._assignments(s, run, sop, step, rs, now)
        for a in assignments:
            s.add(a)
        await s.flush()
        # The bot's draft for the step (`draft:`) goes with its tasks (a
        # letter has its number before any task names it).
        await self.drafts.prepare(s, run, sop, step, rs)
        # One task message per person (and unit), naming all their roles on it.
        tasks: dict[tuple[int, int | None], tuple[Member, Assignment, list[str]]] = {}
        missing: list[dict[str, Any]] = []
        for a in assignments:
            members = await self.reads.assignees(s, a)
            if not members:
                missing.append(await self.messages.missing(s, sop, a))
            await self.kit.event(
                s,
                "assigned",
                run=run,
                actor_id=None,
                run_step_id=rs.id,
                assignment_id=a.id,
                role=a.role,
                unit=await self.reads.unit_name(s, a.unit_id),
                members=[m.name for m in members],
            )
            if not send_tasks:
                continue
            for member in members:
                tasks.setdefault((member.id or 0, a.unit_id), (member, a, []))[2].append(a.role)
        for member, a, roles in tasks.values():
            await self.messages.send_task(s, run, sop, step, rs, a, member, roles=roles)
        if step.action == Action.collect and step.reviewer:
            await self.messages.tell_reviewers(s, run, sop, step, rs, len(assignments))
        if missing:
            await self.messages.warn_unstaffed(s, run, sop, step, rs, missing, actor_id)
        if step.action == Action.validate and not assignments:
            await self.finish_step(s, run, sop, rs, None, outcome="valid", next_key=step.next)
        return rs

    async def _assignments(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep, now: datetime
    ) -> list[Assignment]:
        """Who owes a step that opens: a role, or each unit for a per-unit role."""
        rid = rs.id or 0
        units = (
            await s.exec(select(Unit).where(col(Unit.active).is_(True)).order_by(col(Unit.id)))
        ).all()
        if step.action == Action.validate:
            # Validation works on the collection's own per-unit assignments.
            collect_rs = await self.reads.latest_step(s, run, step.collection or "")
            if collect_rs is not None and await self.reads.collection_settled(s, collect_rs):
                return []
            return [Assignment(run_step_id=rid, role=r, updated_at=now) for r in step.actors]
        if step.action == Action.collect:
            role = next(r for r in step.actors if sop.roles[r].per_unit)
            return [
                Assignment(run_step_id=rid, role=role, unit_id=u.id, updated_at=now) for u in units
            ]
        assignments = []
        for role in step.actors:
            if sop.roles[role].per_unit:
                assignments += [
                    Assignment(run_step_id=rid, role=role, unit_id=u.id, updated_at=now)
                    for u in units
                ]
            else:
                assignments.append(Assignment(run_step_id=rid, role=role, updated_at=now))
        return assignments

    async def deliver_open_tasks(self, s: AsyncSession, member_id: int) -> int:
        """Send a member who just joined the tasks already open for their role
        (and unit), which reached nobody, or only colleagues, when the step
        opened. Runs inside the caller's (the enrolment's) transaction."""
        member = await s.get(Member, member_id)
        if member is None or not member.active:
            return 0
        rows = (
            await s.exec(
                assignments_of_open_runs(list(OWING))
                .where(col(Assignment.member_id).is_(None))
                .order_by(col(RunStep.id), col(Assignment.id))
            )
        ).all()
        groups: dict[tuple[int, int | None], list[tuple[Run, RunStep, Assignment]]] = {}
        for a, rs, run in rows:
            if await self.rules.may_act(s, member_id, a):
                groups.setdefault((rs.id or 0, a.unit_id), []).append((run, rs, a))
        sent = 0
        for (rs_id, _), group in groups.items():
            told = (
                await s.exec(
                    select(Notification.id).where(
                        Notification.member_id == member_id,
                        Notification.run_step_id == rs_id,
                        Notification.template == "task",
                        col(Notification.assignment_id).in_([a.id for _, _, a in group]),
                    )
                )
            ).first()
            if told is not None:
                continue
            run, rs, a = group[0]
            sop = await self.kit.sop_of(s, run)
            step = sop.step(rs.step_key)
            roles = [g[2].role for g in group]
            await self.messages.send_task(
                s, run, sop, step, rs, a, member, reason=TaskReason.joined, roles=roles
            )
            await self.kit.event(
                s,
                "assigned_on_join",
                run=run,
                actor_id=None,
                run_step_id=rs.id,
                assignment_id=a.id,
                step=step.number,
                name=member.name,
                unit=await self.reads.unit_name(s, a.unit_id),
            )
            sent += 1
        return sent

    # ---------------------------------------------------------------- finish

    async def finish_step(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        rs: RunStep,
        actor_id: int | None,
        *,
        outcome: str,
        next_key: str | None,
        note: str | None = None,
        state: StepState = StepState.done,
    ) -> None:
        """Close a step, settle its messages, and open `next_key` (the SOP's
        next step, or the one a decision chose); None ends the run."""
        step = sop.step(rs.step_key)
        now = self.kit.clock.now()
        rs.state, rs.done_at, rs.done_by, rs.outcome, rs.note = state, now, actor_id, outcome, note
        s.add(rs)
        for a in await self.reads.assignments(s, rs):
            # Delivered unit files stay delivered: they still await review.
            if a.state in OWING:
                a.state = AssignmentState.done if actor_id else AssignmentState.closed
                a.updated_at = now
                s.add(a)
        await s.flush()
        await self.kit.event(
            s,
            "step_done",
            run=run,
            actor_id=actor_id,
            run_step_id=rs.id,
            step=step.number,
            key=step.key,
            outcome=outcome,
            note=note,
            state=state.value,
            late_minutes=self.late(rs, now),
        )
        await self._retire_step_messages(s, run, step, rs, actor_id, outcome)
        if next_key is None:
            await self.finish_run(s, run, sop)
        else:
            await self.open_step(s, run, sop, next_key, actor_id=actor_id)

    async def _retire_step_messages(
        self, s: AsyncSession, run: Run, step: Step, rs: RunStep, actor_id: int | None, outcome: str
    ) -> None:
        """The finished step's messages say so; a validation that ends also
        settles its collection's units (all accepted or closed by now)."""
        kind, label = step_settled(step, actor_id, outcome)
        await self.messages.settle.retire_messages(
            s, run, rs, kind, actor_id=actor_id, outcome=outcome, label=label
        )
        if step.after_meeting:
            meeting_rs = await self.reads.latest_step(s, run, step.after_meeting)
            if meeting_rs is not None:
                await self.messages.settle.retire_invitations(
                    s, run, meeting_rs, kind, actor_id=actor_id, outcome=outcome, label=label
                )
        if step.action == Action.validate and step.collection:
            collect_rs = await self.reads.latest_step(s, run, step.collection)
            if collect_rs is not None:
                await self.messages.settle.retire_messages(
                    s, run, collect_rs, kind, actor_id=actor_id, outcome=outcome, label=label
                )

    def late(self, rs: RunStep, now: datetime) -> float:
        if rs.due_at is None or now <= rs.due_at:
            return 0.0
        return round(self.kit.calendar.working_minutes_between(rs.due_at, now), 1)

    async def finish_run(self, s: AsyncSession, run: Run, sop: Sop) -> None:
        """The last step is done: steps never reached are skipped, and the
        officials who carried the run get the closing summary. A unit's
        members do not: their part ended when their delivery was accepted or
        their unit closed, and they were told then (the receipt edited, or
        the closing message); weeks later the head's signature is nothing
        for them to do or know now, and `/status` names the finished run."""
        now = self.kit.clock.now()
        run.state, run.ended_at = RunState.done, now
        s.add(run)
        waiting = (
            await s.exec(
                select(RunStep).where(RunStep.run_id == run.id, RunStep.state == StepState.waiting)
            )
        ).all()
        for rs in waiting:
            rs.state = StepState.skipped
            s.add(rs)
        await s.flush()
        await self.kit.event(
            s, "run_done", run=run, actor_id=None, skipped=[r.number for r in waiting]
        )
        await self.messages.settle.retire_run(s, run, Settled.run_done, actor_id=None)
        summary = await self.summary(s, run, sop)
        for member_id in await self.reads.involved(s, run, units=False):
            await self.messages.notify(
                s, member_id, "run_done", f"run_done:{run.id}:{member_id}", summary, run=run
            )

    async def summary(self, s: AsyncSession, run: Run, sop: Sop) -> dict[str, Any]:
        steps = (
            await s.exec(
                select(RunStep)
                .where(RunStep.run_id == run.id, RunStep.state != StepState.skipped)
                .order_by(col(RunStep.opened_at), col(RunStep.id))
            )
        ).all()
        used = 0.0
        late = []
        now = self.kit.clock.now()
        for rs in steps:
            spent, behind = await self.reads.step_times(s, run, sop.step(rs.step_key), rs, now)
            used += spent or 0.0
            if behind:
                late.append(rs.number)
        return {
            "run_id": run.id,
            "run_title": run.title,
            "sop_name": sop.name,
            "started_at": iso(run.started_at),
            "ended_at": iso(run.ended_at),
            "steps_done": len(steps),
            "files": await self.reads.file_count(s, run_id=run.id),
            "used_minutes": round(used),
            "standard_minutes": sop.total_waktu,
            "late_steps": sorted(set(late)),
        }
