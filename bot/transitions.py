"""Opening and closing steps: the shared core of the run state machine.

Commands (engine.py) and queries (queries.py) build on these helpers; every
helper works inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from bot.audit import append_event
from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database
from bot.definitions import Definitions
from bot.errors import (
    AlreadyDone,
    AmbiguousUnit,
    Delegated,
    InvalidInput,
    NotAllowed,
    NotEnrolled,
    NoteRequired,
    NotFound,
    RunClosed,
    StepNotOpen,
    WrongUnit,
)
from bot.models import (
    Assignment,
    AssignmentState,
    Event,
    Meeting,
    Member,
    MemberRole,
    Notification,
    OutboxState,
    ReviewState,
    Run,
    RunState,
    RunStep,
    StepState,
    StoredFile,
    Unit,
)
from bot.outbox import drop
from bot.sop import Action, Sop, SopRegistry, Step
from bot.storage import FileStorage
from bot.views import ADMIN, MAX_NOTE, OWING, TaskAction, iso

# Messages with buttons for a step: edited once their step (or assignment)
# is settled, so nobody keeps buttons that no longer work.
SETTLED_TEMPLATES = ("task", "reminder", "collection_started")
# An assignment in one of these states owes nothing more: its buttons go.
FINAL = (AssignmentState.done, AssignmentState.closed, AssignmentState.accepted)


def upload_action(run_step_id: int, unit_id: int | None) -> TaskAction:
    """The upload button names the unit too: a member of two units has two
    tasks on one step, and each task message must say which one it is. The
    unit is a hint for finding the assignment, never a permission."""
    return TaskAction("up", (run_step_id, unit_id) if unit_id else (run_step_id,))


def assignments_of_open_runs(
    states: list[AssignmentState], *, open_steps: bool = True
) -> Select[tuple[Assignment, RunStep, Run]]:
    """Assignments in these states, with their step and run, of runs still
    open (and, unless told otherwise, of steps still open)."""
    query = (
        select(Assignment, RunStep, Run)
        .join(RunStep, col(RunStep.id) == col(Assignment.run_step_id))
        .join(Run, col(Run.id) == col(RunStep.run_id))
        .where(Run.state == RunState.open, col(Assignment.state).in_(states))
    )
    return query.where(RunStep.state == StepState.open) if open_steps else query


class Transitions:
    """Helpers that change or read a run inside one transaction."""

    def __init__(
        self,
        db: Database,
        sops: SopRegistry,
        calendar: WorkCalendar,
        clock: Clock,
        storage: FileStorage,
        *,
        max_file_bytes: int | None = 20 * 1024 * 1024,
    ) -> None:
        self.db = db
        self.sops = sops
        self.calendar = calendar
        self.clock = clock
        self.storage = storage
        self.max_file_bytes = max_file_bytes
        self.definitions = Definitions(sops, clock)

    # ------------------------------------------------------------------ helpers

    async def _member(self, s: AsyncSession, member_id: int) -> Member:
        member = await s.get(Member, member_id)
        if member is None or not member.active:
            raise NotEnrolled()
        return member

    async def _roles(self, s: AsyncSession, member_id: int) -> list[MemberRole]:
        return list(
            (await s.exec(select(MemberRole).where(MemberRole.member_id == member_id))).all()
        )

    async def _lock_run(self, s: AsyncSession, run_id: int) -> Run:
        run = (await s.exec(select(Run).where(Run.id == run_id).with_for_update())).first()
        if run is None:
            raise NotFound("run")
        if run.state != RunState.open:
            raise RunClosed(run_title=run.title, state=run.state.value)
        return run

    async def _run_step(self, s: AsyncSession, run_step_id: int) -> tuple[Run, RunStep]:
        rs = await s.get(RunStep, run_step_id)
        if rs is None:
            raise NotFound("step")
        run = await self._lock_run(s, rs.run_id)
        await s.refresh(rs)
        return run, rs

    async def _sop(self, s: AsyncSession, run: Run) -> Sop:
        """The definition this run started with, not necessarily the file's."""
        return await self.definitions.for_run(s, run)

    async def _event(
        self, s: AsyncSession, kind: str, *, run: Run | None, actor_id: int | None, **details: Any
    ) -> Event:
        return await append_event(
            s,
            kind,
            at=self.clock.now(),
            run_id=run.id if run else None,
            actor_id=actor_id,
            details=details,
        )

    async def _notify(
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
        file_id: int | None = None,
        not_before: datetime | None = None,
        edits_id: int | None = None,
        office_hours_only: bool = False,
    ) -> Notification | None:
        """Queue a message in the outbox; a key already queued is skipped
        (None). With `edits_id` the row edits that earlier message instead;
        `office_hours_only` rows (reminders, the digest) wait for opening."""
        exists = (await s.exec(select(Notification.id).where(Notification.key == key))).first()
        if exists is not None:
            return None
        now = self.clock.now()
        row = Notification(
            key=key,
            member_id=member_id,
            template=template,
            context=context,
            run_id=run.id if run else None,
            run_step_id=run_step_id,
            assignment_id=assignment_id,
            file_id=file_id,
            created_at=now,
            not_before=not_before or now,
            edits_id=edits_id,
            office_hours_only=office_hours_only,
        )
        s.add(row)
        await s.flush()
        return row

    async def _retire_messages(
        self,
        s: AsyncSession,
        run: Run,
        rs: RunStep,
        kind: str,
        *,
        actor_id: int | None,
        assignment_ids: list[int] | None = None,
        every: bool = False,
        skip_member: int | None = None,
        **details: Any,
    ) -> int:
        """Edit the messages with buttons for this step (or for these
        assignments) that nobody needs any more: their buttons go and a line
        says what happened, by whom and when, so a co-holder (the other
        planner) sees that it is done. Without `assignment_ids` only messages
        of finished assignments (and of none) are settled, unless `every`:
        a unit's upload button stays while its file may still be replaced."""
        query = select(Notification).where(
            col(Notification.template).in_(SETTLED_TEMPLATES),
            col(Notification.state).in_([OutboxState.pending, OutboxState.sent]),
            col(Notification.edits_id).is_(None),
        )
        if assignment_ids is not None:
            # Also a reminder about these assignments sent under another step.
            query = query.where(col(Notification.assignment_id).in_(assignment_ids))
        else:
            query = query.where(Notification.run_step_id == rs.id)
        rows = list((await s.exec(query.order_by(Notification.id))).all())
        if assignment_ids is None and not every:
            # A reminder may name another step's assignment (a unit still
            # owing on the collection while its validation is late).
            kept = []
            for r in rows:
                a = await s.get(Assignment, r.assignment_id) if r.assignment_id else None
                if a is None or a.state in FINAL:
                    kept.append(r)
            rows = kept
        return await self._retire_rows(
            s, run, rs, rows, kind, actor_id=actor_id, skip_member=skip_member, **details
        )

    async def _retire_rows(
        self,
        s: AsyncSession,
        run: Run,
        rs: RunStep,
        rows: list[Notification],
        kind: str,
        *,
        actor_id: int | None,
        skip_member: int | None = None,
        **details: Any,
    ) -> int:
        """Queue, for each of these messages, the edit that takes its buttons
        away and says what happened (a file message only loses its buttons);
        one not sent yet is dropped instead, as nobody needs it any more."""
        actor = await s.get(Member, actor_id) if actor_id else None
        context = {
            "run_title": run.title,
            "number": rs.number,
            "iteration": rs.iteration,
            "kind": kind,
            "actor_id": actor_id,
            "by": actor.name if actor else None,
            "at": iso(self.clock.now()),
            **details,
        }
        settled = 0
        for row in rows:
            if row.member_id == skip_member:
                continue
            if row.template == "file_for_review" and row.state == OutboxState.pending:
                await drop(s, row, f"file_{kind}", self.clock.now())
                continue
            settled += bool(
                await self._notify(
                    s,
                    row.member_id,
                    "settled",
                    f"settled:{row.id}",
                    context,
                    run=run,
                    run_step_id=rs.id,
                    assignment_id=row.assignment_id,
                    edits_id=row.id,
                )
            )
        return settled

    async def _review_messages(
        self, s: AsyncSession, files: list[StoredFile]
    ) -> list[Notification]:
        """The planners' review messages (with Terima / Kembalikan) of these files."""
        if not files:
            return []
        return list(
            (
                await s.exec(
                    select(Notification).where(
                        Notification.template == "file_for_review",
                        col(Notification.file_id).in_([f.id for f in files]),
                        col(Notification.state).in_([OutboxState.pending, OutboxState.sent]),
                    )
                )
            ).all()
        )

    async def step_times(
        self, s: AsyncSession, run: Run, step: Step, rs: RunStep, now: datetime
    ) -> tuple[float | None, float]:
        """Working minutes a step used and how late it was (0 when not),
        the one reckoning behind /status, the monev report and the closing
        summary. A step held at a meeting counts from the meeting's start
        (or its own opening, if later): the wait for the meeting is not time
        spent on it, just as its due time counts from the meeting."""
        end = rs.done_at or (now if rs.state == StepState.open else None)
        start = rs.opened_at
        if step.after_meeting and start is not None:
            meeting = await self._meeting_of(s, run, step)
            if meeting is not None and meeting.starts_at > start:
                start = meeting.starts_at
        used = self.calendar.working_minutes_between(start, end) if start and end else None
        late = 0.0
        if rs.due_at and end and end > rs.due_at:
            late = self.calendar.working_minutes_between(rs.due_at, end)
        return used, late

    async def _holders(
        self, s: AsyncSession, role: str, unit_id: int | None = None
    ) -> list[Member]:
        query = (
            select(Member)
            .join(MemberRole, col(MemberRole.member_id) == col(Member.id))
            .where(MemberRole.role == role, col(Member.active).is_(True))
        )
        if unit_id is not None:
            query = query.where(MemberRole.unit_id == unit_id)
        members = (await s.exec(query.order_by(Member.id))).all()
        return list({m.id: m for m in members}.values())

    async def _assignees(self, s: AsyncSession, a: Assignment) -> list[Member]:
        if a.member_id is not None:
            member = await s.get(Member, a.member_id)
            return [member] if member and member.active else []
        return await self._holders(s, a.role, a.unit_id)

    async def _unit_name(self, s: AsyncSession, unit_id: int | None) -> str | None:
        if unit_id is None:
            return None
        unit = await s.get(Unit, unit_id)
        return unit.name if unit else None

    async def _may_act(self, s: AsyncSession, member_id: int, a: Assignment) -> bool:
        if a.member_id is not None:
            return a.member_id == member_id
        for role in await self._roles(s, member_id):
            if role.role == a.role and (a.unit_id is None or role.unit_id == a.unit_id):
                return True
        return False

    async def _could_hold(self, s: AsyncSession, member_id: int, a: Assignment) -> bool:
        """Does the member hold the assignment's role (and unit), whoever holds
        the assignment now?"""
        return any(
            r.role == a.role and (a.unit_id is None or r.unit_id == a.unit_id)
            for r in await self._roles(s, member_id)
        )

    async def _refuse_if_delegated(
        self, s: AsyncSession, member_id: int, assignments: Sequence[Assignment]
    ) -> None:
        """A task handed to someone else is refused by saying so (to whom, by
        whom, when), not as if the member never had the role."""
        for a in assignments:
            if a.member_id is None or a.member_id == member_id:
                continue
            if a.delegated_by != member_id and not await self._could_hold(s, member_id, a):
                continue
            holder = await s.get(Member, a.member_id)
            by = await s.get(Member, a.delegated_by) if a.delegated_by else None
            events = (
                await s.exec(
                    select(Event)
                    .where(Event.kind == "reassigned", Event.run_id == await self._run_id_of(s, a))
                    .order_by(col(Event.seq).desc())
                )
            ).all()
            at = next((e.at for e in events if e.details.get("assignment_id") == a.id), None)
            raise Delegated(
                to=holder.name if holder else "",
                by=by.name if by else "",
                at=iso(at),
                by_you=a.delegated_by == member_id,
            )

    async def _run_id_of(self, s: AsyncSession, a: Assignment) -> int | None:
        rs = await s.get(RunStep, a.run_step_id)
        return rs.run_id if rs else None

    async def _assignment_for(
        self, s: AsyncSession, member_id: int, rs: RunStep, unit_id: int | None = None
    ) -> Assignment:
        """The member's assignment on this step, or the reason they have none."""
        assignments = (
            await s.exec(select(Assignment).where(Assignment.run_step_id == rs.id))
        ).all()
        mine = [a for a in assignments if await self._may_act(s, member_id, a)]
        if unit_id is not None:
            mine = [a for a in mine if a.unit_id == unit_id]
        if not mine:
            await self._refuse_if_delegated(s, member_id, assignments)
            roles = {r.role for r in await self._roles(s, member_id)}
            if any(a.role in roles and a.unit_id is not None for a in assignments):
                raise WrongUnit()
            raise NotAllowed(roles=sorted({a.role for a in assignments}))
        owing = [
            a for a in mine if a.state not in (AssignmentState.accepted, AssignmentState.closed)
        ]
        if len({a.unit_id for a in owing}) > 1:
            units = [(a.unit_id, await self._unit_name(s, a.unit_id)) for a in owing]
            run = await s.get(Run, rs.run_id)
            raise AmbiguousUnit(
                units=units,
                run_step_id=rs.id,
                number=rs.number,
                run_title=run.title if run else "",
            )
        return (owing or mine)[0]

    def _step_context(self, run: Run, sop: Sop, step: Step, rs: RunStep) -> dict[str, Any]:
        return {
            "run_id": run.id,
            "run_title": run.title,
            "sop_name": sop.name,
            "run_step_id": rs.id,
            "number": step.number,
            "step_key": step.key,
            "uraian": step.uraian,
            "kelengkapan": step.kelengkapan,
            "waktu": step.waktu,
            "output": step.output,
            "keterangan": step.keterangan,
            "petunjuk": step.petunjuk,
            "action": step.action.value,
            # Role names from the definition, so texts need no seed-SOP words.
            "actor_roles": ", ".join(sop.roles[r].name for r in step.actors),
            "reviewer_name": sop.roles[step.reviewer].name if step.reviewer else None,
            "iteration": rs.iteration,
            "opened_at": iso(rs.opened_at),
            "due_at": iso(rs.due_at),
        }

    async def _latest_files(self, s: AsyncSession, run: Run, step_key: str) -> list[StoredFile]:
        """Files of the latest iteration of a step that has any."""
        steps = (
            await s.exec(
                select(RunStep)
                .where(RunStep.run_id == run.id, RunStep.step_key == step_key)
                .order_by(col(RunStep.iteration).desc())
            )
        ).all()
        for rs in steps:
            files = (
                await s.exec(
                    select(StoredFile)
                    .where(
                        StoredFile.run_step_id == rs.id,
                        StoredFile.review_state != ReviewState.superseded,
                    )
                    .order_by(StoredFile.id)
                )
            ).all()
            if files:
                # Only each uploader's latest version (all its pages): a form
                # uploaded twice is sent once, as its newest version.
                latest: dict[int | None, int] = {}
                for f in files:
                    latest[f.assignment_id] = max(latest.get(f.assignment_id, 0), f.version)
                return [f for f in files if f.version == latest[f.assignment_id]]
        return []

    async def _notes_since(
        self, s: AsyncSession, run: Run, sop: Sop, rs: RunStep
    ) -> list[dict[str, Any]]:
        """Notes left by the steps done since this step last closed (or just
        the previous step, the first time), so a correction note reaches the
        person who must act on it. A correction (a step marked returned)
        starts a new round: notes from before it are stale and left out.
        A decision is named even without a note ("Setujui"), so the next
        task says what was decided."""
        done = (
            await s.exec(
                select(RunStep)
                .where(RunStep.run_id == run.id, col(RunStep.done_at).is_not(None))
                .order_by(col(RunStep.done_at), col(RunStep.id))
            )
        ).all()
        previous_self = [d for d in done if d.step_key == rs.step_key and d.id != rs.id]
        if previous_self:
            cutoff = previous_self[-1]
            window = [d for d in done if (d.done_at, d.id) > (cutoff.done_at, cutoff.id)]
            corrections = [i for i, d in enumerate(window) if d.state == StepState.returned]
            if corrections:
                window = window[corrections[-1] :]
        else:
            window = list(done[-1:])
        notes = []
        for d in window:
            done_step = sop.step(d.step_key)
            chosen = done_step.outcome(d.outcome or "") if done_step.outcomes else None
            if d.note or chosen is not None:
                actor = await s.get(Member, d.done_by) if d.done_by else None
                notes.append(
                    {
                        "number": d.number,
                        "by": actor.name if actor else "",
                        "note": d.note,
                        "outcome": d.outcome,
                        "label": chosen.label if chosen else None,
                        "role": sop.roles[done_step.actors[0]].name if chosen else None,
                    }
                )
        return notes

    async def _send_task(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        step: Step,
        rs: RunStep,
        a: Assignment,
        member: Member,
        *,
        reason: str = "opened",
        roles: list[str] | None = None,
    ) -> None:
        context = self._step_context(run, sop, step, rs)
        context.update(
            roles=[sop.roles[r].name for r in roles or [a.role] if r in sop.roles],
            assignment_id=a.id,
            unit_name=await self._unit_name(s, a.unit_id),
            notes=await self._notes_since(s, run, sop, rs),
            actions=[t.as_dict() for t in self._actions(step, rs, a)],
            reason=reason,
        )
        key = f"task:{rs.id}:{a.id}:{member.id}:{reason}"
        if await self._notify(
            s, member.id, "task", key, context, run=run, run_step_id=rs.id, assignment_id=a.id
        ):
            for f in await self._attachments(s, run, step):
                await self._notify(
                    s,
                    member.id,
                    "attachment",
                    f"att:{rs.id}:{member.id}:{f.id}",
                    {
                        "run_title": run.title,
                        "number": step.number,
                        "name": f.original_name,
                        "version": f.version,
                    },
                    run=run,
                    run_step_id=rs.id,
                    file_id=f.id,
                )

    async def _attachments(self, s: AsyncSession, run: Run, step: Step) -> list[StoredFile]:
        for key in step.attach_from:
            files = await self._latest_files(s, run, key)
            if files:
                return files
        return []

    def _actions(self, step: Step, rs: RunStep, a: Assignment | None) -> list[TaskAction]:
        rid = rs.id or 0
        up = upload_action(rid, a.unit_id if a is not None else None)
        match step.action:
            case Action.confirm:
                verbs = [] if step.files == "none" else [up]
                return [*verbs, TaskAction("ok", (rid,))]
            case Action.decide:
                return [
                    TaskAction("dec", (rid, i), o.label, o.icon)
                    for i, o in enumerate(step.outcomes)
                ]
            case Action.distribute:
                return [TaskAction("send", (rid,))]
            case Action.meeting:
                return [TaskAction("mtg", (rid,))]
            case Action.collect:
                return [up]
            case Action.validate:
                return [TaskAction("view", (rid,)), TaskAction("cls", (rid,))]
        return []

    async def _open_step(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        key: str,
        *,
        reason: str = "opened",
        actor_id: int | None = None,
    ) -> RunStep:
        step = sop.step(key)
        now = self.clock.now()
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
        meeting = await self._meeting_of(s, run, step)
        start = max(now, meeting.starts_at) if meeting is not None else now
        rs.due_at = self.calendar.add_working_minutes(start, step.waktu)
        s.add(rs)
        await s.flush()
        await self._event(
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

        if step.action == Action.validate:
            # Validation works on the collection's own per-unit assignments.
            collect_rs = await self._latest_step(s, run, step.collection or "")
            assignments = [
                Assignment(run_step_id=rs.id or 0, role=r, updated_at=now) for r in step.actors
            ]
            if collect_rs is not None and await self._collection_settled(s, collect_rs):
                assignments = []
        elif step.action == Action.collect:
            units = (
                await s.exec(select(Unit).where(col(Unit.active).is_(True)).order_by(Unit.id))
            ).all()
            role = next(r for r in step.actors if sop.roles[r].per_unit)
            assignments = [
                Assignment(run_step_id=rs.id or 0, role=role, unit_id=u.id, updated_at=now)
                for u in units
            ]
        else:
            assignments = []
            for role in step.actors:
                if sop.roles[role].per_unit:
                    units = (await s.exec(select(Unit).where(col(Unit.active).is_(True)))).all()
                    assignments += [
                        Assignment(run_step_id=rs.id or 0, role=role, unit_id=u.id, updated_at=now)
                        for u in units
                    ]
                else:
                    assignments.append(
                        Assignment(run_step_id=rs.id or 0, role=role, updated_at=now)
                    )
        for a in assignments:
            s.add(a)
        await s.flush()
        # One task message per person (and unit), naming all their roles on it.
        tasks: dict[tuple[int, int | None], tuple[Member, Assignment, list[str]]] = {}
        missing: list[dict[str, Any]] = []
        for a in assignments:
            members = await self._assignees(s, a)
            if not members:
                missing.append(await self._missing(s, sop, a))
            await self._event(
                s,
                "assigned",
                run=run,
                actor_id=None,
                run_step_id=rs.id,
                assignment_id=a.id,
                role=a.role,
                unit=await self._unit_name(s, a.unit_id),
                members=[m.name for m in members],
            )
            if reason == "silent":  # the starter acts on it at once
                continue
            for member in members:
                tasks.setdefault((member.id or 0, a.unit_id), (member, a, []))[2].append(a.role)
        for member, a, roles in tasks.values():
            await self._send_task(s, run, sop, step, rs, a, member, reason=reason, roles=roles)
        if step.action == Action.collect and step.reviewer:
            await self._tell_reviewers(s, run, sop, step, rs, len(assignments))
        if missing:
            await self._warn_unstaffed(s, run, sop, step, rs, missing, actor_id)
        if step.action == Action.validate and not assignments:
            await self._finish_step(s, run, sop, rs, None, outcome="valid", note=None)
        return rs

    async def _tell_reviewers(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep, units: int
    ) -> None:
        """A collection has opened: its reviewers (the SOP's `reviewer`) get
        the buttons to follow it and to close it, not only through /tugas."""
        context = {
            **self._step_context(run, sop, step, rs),
            "units": units,
            "unit_label": sop.unit_label,
            "actions": [
                TaskAction("view", (rs.id or 0,)).as_dict(),
                TaskAction("cls", (rs.id or 0,)).as_dict(),
            ],
        }
        for m in await self._holders(s, step.reviewer or ""):
            await self._notify(
                s,
                m.id or 0,
                "collection_started",
                f"collecting:{rs.id}:{m.id}",
                context,
                run=run,
                run_step_id=rs.id,
            )

    async def _missing(self, s: AsyncSession, sop: Sop, a: Assignment) -> dict[str, Any]:
        """An assignment nobody holds, as data for the event and the warning."""
        role = sop.roles[a.role].name if a.role in sop.roles else a.role
        unit = await self._unit_name(s, a.unit_id)
        return {
            "role": a.role,
            "role_name": role,
            "unit": unit,
            "label": f"{role} ({unit})" if unit else role,
        }

    async def _warn_unstaffed(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        step: Step,
        rs: RunStep,
        missing: list[dict[str, Any]],
        actor_id: int | None,
    ) -> None:
        """A step opened with a role (or unit) nobody holds, so its task went to
        no one: record it and tell the admins, whoever opened the step and, for
        a collection, its reviewers, so someone is invited or the unit closed."""
        await self._event(
            s,
            "unstaffed",
            run=run,
            actor_id=None,
            run_step_id=rs.id,
            step=step.number,
            missing=missing,
        )
        recipients = [m.id or 0 for m in await self._holders(s, ADMIN)]
        if step.action == Action.collect and step.reviewer:
            recipients += [m.id or 0 for m in await self._holders(s, step.reviewer)]
        if actor_id is not None:
            recipients.append(actor_id)
        context = {
            **self._step_context(run, sop, step, rs),
            "missing": missing,
            "closable": step.action == Action.collect,
        }
        for member_id in dict.fromkeys(recipients):
            await self._notify(
                s,
                member_id,
                "unstaffed",
                f"unstaffed:{rs.id}:{member_id}",
                context,
                run=run,
                run_step_id=rs.id,
            )

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
            if await self._may_act(s, member_id, a):
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
            sop = await self._sop(s, run)
            step = sop.step(rs.step_key)
            roles = [g[2].role for g in group]
            await self._send_task(s, run, sop, step, rs, a, member, reason="joined", roles=roles)
            await self._event(
                s,
                "assigned_on_join",
                run=run,
                actor_id=None,
                run_step_id=rs.id,
                assignment_id=a.id,
                step=step.number,
                name=member.name,
                unit=await self._unit_name(s, a.unit_id),
            )
            sent += 1
        return sent

    async def _meeting_of(self, s: AsyncSession, run: Run, step: Step) -> Meeting | None:
        """The meeting a step is held at (its `after_meeting`), once it is set."""
        if not step.after_meeting:
            return None
        meeting_rs = await self._latest_step(s, run, step.after_meeting)
        if meeting_rs is None:
            return None
        return (
            await s.exec(
                select(Meeting)
                .where(Meeting.run_step_id == meeting_rs.id)
                .order_by(col(Meeting.id).desc())
            )
        ).first()

    async def _latest_step(self, s: AsyncSession, run: Run, key: str) -> RunStep | None:
        return (
            await s.exec(
                select(RunStep)
                .where(
                    RunStep.run_id == run.id,
                    RunStep.step_key == key,
                    RunStep.state != StepState.waiting,
                )
                .order_by(col(RunStep.iteration).desc())
            )
        ).first()

    async def _finish_step(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        rs: RunStep,
        actor_id: int | None,
        *,
        outcome: str,
        note: str | None,
        state: StepState = StepState.done,
        next_key: str | None | type[Ellipsis] = ...,
    ) -> None:
        step = sop.step(rs.step_key)
        now = self.clock.now()
        rs.state, rs.done_at, rs.done_by, rs.outcome, rs.note = state, now, actor_id, outcome, note
        s.add(rs)
        for a in (await s.exec(select(Assignment).where(Assignment.run_step_id == rs.id))).all():
            # Delivered unit files stay delivered: they still await review.
            if a.state in OWING:
                a.state = AssignmentState.done if actor_id else AssignmentState.closed
                a.updated_at = now
                s.add(a)
        await s.flush()
        await self._event(
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
            late_minutes=self._late(rs, now),
        )
        await self._retire_step_messages(s, run, sop, step, rs, actor_id, outcome)
        target = step.next if next_key is ... else next_key
        if target is None:
            await self._finish_run(s, run, sop)
        else:
            await self._open_step(s, run, sop, str(target), actor_id=actor_id)

    async def _retire_step_messages(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        step: Step,
        rs: RunStep,
        actor_id: int | None,
        outcome: str,
    ) -> None:
        """The finished step's messages say so; a validation that ends also
        settles its collection's units (all accepted or closed by now)."""
        chosen = step.outcome(outcome) if step.outcomes else None
        if actor_id is None:
            kind = "auto"
        elif chosen is not None:
            kind = "decided"
        elif outcome == "ditutup":
            kind = "closed"
        else:
            kind = "done"
        details = {"outcome": outcome, "label": chosen.label if chosen else None}
        await self._retire_messages(s, run, rs, kind, actor_id=actor_id, **details)
        if step.action == Action.validate and step.collection:
            collect_rs = await self._latest_step(s, run, step.collection)
            if collect_rs is not None:
                await self._retire_messages(s, run, collect_rs, kind, actor_id=actor_id, **details)

    def _late(self, rs: RunStep, now: datetime) -> float:
        if rs.due_at is None or now <= rs.due_at:
            return 0.0
        return round(self.calendar.working_minutes_between(rs.due_at, now), 1)

    async def _finish_run(self, s: AsyncSession, run: Run, sop: Sop) -> None:
        now = self.clock.now()
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
        await self._event(
            s, "run_done", run=run, actor_id=None, skipped=[r.number for r in waiting]
        )
        summary = await self._summary(s, run, sop)
        for member_id in await self._involved(s, run):
            await self._notify(
                s, member_id, "run_done", f"run_done:{run.id}:{member_id}", summary, run=run
            )

    async def _involved(self, s: AsyncSession, run: Run) -> list[int]:
        """Everyone who acted in or was assigned to the run."""
        ids: set[int] = set()
        if run.started_by:
            ids.add(run.started_by)
        steps = (await s.exec(select(RunStep).where(RunStep.run_id == run.id))).all()
        for rs in steps:
            if rs.done_by:
                ids.add(rs.done_by)
            for a in (
                await s.exec(select(Assignment).where(Assignment.run_step_id == rs.id))
            ).all():
                ids.update(m.id for m in await self._assignees(s, a) if m.id)
        return sorted(ids)

    async def _summary(self, s: AsyncSession, run: Run, sop: Sop) -> dict[str, Any]:
        steps = (
            await s.exec(
                select(RunStep)
                .where(RunStep.run_id == run.id, RunStep.state != StepState.skipped)
                .order_by(col(RunStep.opened_at), col(RunStep.id))
            )
        ).all()
        files = (
            await s.exec(
                select(func.count()).select_from(StoredFile).where(StoredFile.run_id == run.id)
            )
        ).one()
        used = 0.0
        late = []
        now = self.clock.now()
        for rs in steps:
            spent, behind = await self.step_times(s, run, sop.step(rs.step_key), rs, now)
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
            "files": files,
            "used_minutes": round(used),
            "standard_minutes": sop.total_waktu,
            "late_steps": sorted(set(late)),
        }

    async def _collection_settled(self, s: AsyncSession, collect_rs: RunStep) -> bool:
        assignments = (
            await s.exec(select(Assignment).where(Assignment.run_step_id == collect_rs.id))
        ).all()
        return all(
            a.state in (AssignmentState.accepted, AssignmentState.closed) for a in assignments
        )

    async def _album_pages(self, s: AsyncSession, stored: StoredFile) -> list[StoredFile]:
        """Every page of the version `stored` belongs to, in the order sent."""
        return list(
            (
                await s.exec(
                    select(StoredFile)
                    .where(
                        StoredFile.run_step_id == stored.run_step_id,
                        StoredFile.assignment_id == stored.assignment_id,
                        StoredFile.version == stored.version,
                    )
                    .order_by(col(StoredFile.id))
                )
            ).all()
        )

    async def _closable(self, s: AsyncSession, step: Step, target: RunStep) -> list[Assignment]:
        """The units a collection still waits for: at the collection, those
        that have not delivered; at its validation, those not yet accepted."""
        assignments = (
            await s.exec(
                select(Assignment)
                .where(Assignment.run_step_id == target.id)
                .order_by(col(Assignment.unit_id))
            )
        ).all()
        if step.action == Action.collect:
            return [a for a in assignments if a.state in OWING]
        return [
            a
            for a in assignments
            if a.state not in (AssignmentState.accepted, AssignmentState.closed)
        ]

    async def _closed_refusal(self, s: AsyncSession, run: Run, a: Assignment) -> StepNotOpen:
        """Why a closed unit may no longer act: who closed it and why."""
        by = None
        for e in (
            await s.exec(
                select(Event)
                .where(Event.run_id == run.id, Event.kind == "unit_closed")
                .order_by(col(Event.seq).desc())
            )
        ).all():
            if e.details.get("assignment_id") == a.id:
                by = e.details.get("by")
                break
        return StepNotOpen(
            "unit_closed", unit=await self._unit_name(s, a.unit_id), by=by, reason=a.note
        )

    async def _require_unreviewed(self, s: AsyncSession, stored: StoredFile) -> None:
        """Refuse a review of a file already decided, or replaced by a newer
        version (saying which, so the reviewer looks at that one)."""
        if stored.review_state == ReviewState.received:
            return
        if stored.review_state == ReviewState.superseded:
            newest = (
                await s.exec(
                    select(StoredFile)
                    .where(
                        StoredFile.run_step_id == stored.run_step_id,
                        StoredFile.assignment_id == stored.assignment_id,
                    )
                    .order_by(col(StoredFile.version).desc(), col(StoredFile.id).desc())
                )
            ).first()
            raise AlreadyDone(
                "superseded",
                version=newest.version if newest else stored.version,
                unit=await self._unit_name(s, stored.unit_id),
            )
        raise AlreadyDone(stored.review_state.value)

    def _check_note(self, note: str | None, rule: str, prompt: str | None = None) -> str | None:
        """The note as kept; a missing required one is refused with what
        to ask for (the SOP's `note_prompt`, if any)."""
        note = (note or "").strip() or None
        if note and len(note) > MAX_NOTE:
            raise InvalidInput("note_too_long", limit=MAX_NOTE)
        if rule == "required" and not note:
            raise NoteRequired(prompt=prompt)
        return note if rule != "none" else None
