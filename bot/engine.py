"""The run state machine.

One public method is one command and one database transaction: it checks that
the acting member may act now, changes state, appends events to the chain and
writes the notifications it implies to the outbox. Nothing here knows about
Telegram; callers pass member ids and plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import append_event
from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database
from bot.errors import (
    AlreadyDone,
    AmbiguousUnit,
    FileRejected,
    FilesRequired,
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
    Attendance,
    Event,
    Meeting,
    Member,
    MemberRole,
    Notification,
    ReviewState,
    Run,
    RunState,
    RunStep,
    StepState,
    StoredFile,
    Unit,
)
from bot.sop import Action, Sop, SopRegistry, Step
from bot.sop.loader import fingerprint
from bot.storage import FileStorage, extension_of
from bot.workbook import WORKBOOK_EXTENSIONS, BrokenWorkbook, inspect_workbook

ADMIN = "admin"
MAX_NOTE = 1000
MAX_TITLE = 200
PHOTO_EXTENSIONS = {"jpg", "jpeg", "png"}
OWING = (AssignmentState.open, AssignmentState.returned)


@dataclass(frozen=True)
class IncomingFile:
    """A file as received, before it is stored."""

    data: bytes
    original_name: str
    mime_type: str
    kind: str = "document"  # document | photo
    telegram_file_id: str | None = None
    batch: str | None = None  # album id: pages sent together form one version


@dataclass(frozen=True)
class TaskAction:
    """Something a person can do now: a verb and the ids it acts on."""

    verb: str
    args: tuple[int, ...]
    label: str | None = None  # from the SOP file (a decision's outcome label)

    def as_dict(self) -> dict[str, Any]:
        return {"verb": self.verb, "args": list(self.args), "label": self.label}


@dataclass
class Task:
    run_id: int
    run_title: str
    run_step_id: int
    number: int
    step_key: str
    uraian: str
    action: str
    due_at: datetime | None
    opened_at: datetime | None
    waktu: int
    assignment_id: int | None = None
    unit_id: int | None = None
    unit_name: str | None = None
    state: str = "open"
    note: str | None = None
    actions: list[TaskAction] = field(default_factory=list)


@dataclass
class StepStatus:
    run_step_id: int
    number: int
    key: str
    uraian: str
    actors: list[str]
    state: str
    iteration: int
    waktu: int
    opened_at: datetime | None
    due_at: datetime | None
    done_at: datetime | None
    used_minutes: float | None
    late_minutes: float | None
    pending_units: list[str] = field(default_factory=list)


@dataclass
class RunStatus:
    run_id: int
    title: str
    sop_name: str
    state: str
    started_at: datetime
    steps: list[StepStatus]
    reminders_paused: bool = False


@dataclass
class UnitDelivery:
    assignment_id: int
    unit_id: int
    unit_name: str
    state: str
    file: StoredFile | None
    versions: int


@dataclass
class Receipt:
    file: StoredFile
    run_title: str
    step_number: int
    unit_name: str | None
    step_closed: bool
    checks: list[str] = field(default_factory=list)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class Engine:
    """Commands and queries over runs; construct once per process."""

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

    async def _lock_run(self, s: AsyncSession, run_id: int, *, must_be_open: bool = True) -> Run:
        run = (await s.exec(select(Run).where(Run.id == run_id).with_for_update())).first()
        if run is None:
            raise NotFound("run")
        if must_be_open and run.state != RunState.open:
            raise RunClosed(run_title=run.title, state=run.state.value)
        return run

    async def _run_step(self, s: AsyncSession, run_step_id: int) -> tuple[Run, RunStep]:
        rs = await s.get(RunStep, run_step_id)
        if rs is None:
            raise NotFound("step")
        run = await self._lock_run(s, rs.run_id)
        await s.refresh(rs)
        return run, rs

    def _sop(self, run: Run) -> Sop:
        return self.sops.get(run.sop_key)

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
    ) -> bool:
        """Queue a message in the outbox; a key already queued is skipped."""
        exists = (await s.exec(select(Notification.id).where(Notification.key == key))).first()
        if exists is not None:
            return False
        now = self.clock.now()
        s.add(
            Notification(
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
            )
        )
        await s.flush()
        return True

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
            roles = {r.role for r in await self._roles(s, member_id)}
            if any(a.role in roles and a.unit_id is not None for a in assignments):
                raise WrongUnit()
            raise NotAllowed(roles=sorted({a.role for a in assignments}))
        owing = [
            a for a in mine if a.state not in (AssignmentState.accepted, AssignmentState.closed)
        ]
        if len({a.unit_id for a in owing}) > 1:
            units = [(a.unit_id, await self._unit_name(s, a.unit_id)) for a in owing]
            raise AmbiguousUnit(units=units, run_step_id=rs.id)
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
                return list(files)
        return []

    async def _notes_since(self, s: AsyncSession, run: Run, rs: RunStep) -> list[dict[str, Any]]:
        """Notes left by the steps done since this step last closed (or just
        the previous step, the first time), so a correction note reaches the
        person who must act on it."""
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
        else:
            window = list(done[-1:])
        notes = []
        for d in window:
            if d.note:
                actor = await s.get(Member, d.done_by) if d.done_by else None
                notes.append(
                    {
                        "number": d.number,
                        "by": actor.name if actor else "",
                        "note": d.note,
                        "outcome": d.outcome,
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
    ) -> None:
        context = self._step_context(run, sop, step, rs)
        context.update(
            assignment_id=a.id,
            unit_name=await self._unit_name(s, a.unit_id),
            notes=await self._notes_since(s, run, rs),
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
                    {"run_title": run.title, "number": step.number, "name": f.original_name},
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
        match step.action:
            case Action.confirm:
                verbs = [] if step.files == "none" else [TaskAction("up", (rid,))]
                return [*verbs, TaskAction("ok", (rid,))]
            case Action.decide:
                return [TaskAction("dec", (rid, i), o.label) for i, o in enumerate(step.outcomes)]
            case Action.distribute:
                return [TaskAction("send", (rid,))]
            case Action.meeting:
                return [TaskAction("mtg", (rid,))]
            case Action.collect:
                return [TaskAction("up", (rid,))]
            case Action.validate:
                return [TaskAction("view", (rid,)), TaskAction("cls", (rid,))]
        return []

    async def _open_step(
        self, s: AsyncSession, run: Run, sop: Sop, key: str, *, reason: str = "opened"
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
        rs.due_at = self.calendar.add_working_minutes(now, step.waktu)
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
        for a in assignments:
            members = await self._assignees(s, a)
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
                await self._send_task(s, run, sop, step, rs, a, member, reason=reason)
        if step.action == Action.validate and not assignments:
            await self._finish_step(s, run, sop, rs, None, outcome="valid", note=None)
        return rs

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
        target = step.next if next_key is ... else next_key
        if target is None:
            await self._finish_run(s, run, sop)
        else:
            await self._open_step(s, run, sop, str(target))

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
        for rs in steps:
            if rs.opened_at and rs.done_at:
                used += self.calendar.working_minutes_between(rs.opened_at, rs.done_at)
                if rs.due_at and rs.done_at > rs.due_at:
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

    def _check_note(self, note: str | None, rule: str) -> str | None:
        note = (note or "").strip() or None
        if note and len(note) > MAX_NOTE:
            raise InvalidInput("note_too_long", limit=MAX_NOTE)
        if rule == "required" and not note:
            raise NoteRequired()
        return note if rule != "none" else None

    # ----------------------------------------------------------------- commands

    async def start_run(
        self, actor_id: int, title: str, *, sop_key: str | None = None, note: str | None = None
    ) -> Run:
        """Start a run. When the starter holds step 1's role, starting it is
        step 1 (the disposition) and the note goes to the next actor."""
        title = " ".join((title or "").split())
        if not title:
            raise InvalidInput("title_missing")
        if len(title) > MAX_TITLE:
            raise InvalidInput("title_too_long", limit=MAX_TITLE)
        if sop_key is None:
            sop = self.sops.all()[0]
        elif sop_key in self.sops:
            sop = self.sops.get(sop_key)
        else:
            raise NotFound("sop", sop_key=sop_key)
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            roles = {r.role for r in await self._roles(s, actor_id)}
            first = sop.first
            if not (roles & (set(first.actors) | {ADMIN})):
                raise NotAllowed(roles=[*first.actors, ADMIN])
            note = self._check_note(note, "optional")
            now = self.clock.now()
            run = Run(
                sop_key=sop.key,
                sop_version=fingerprint(sop),
                title=title,
                started_at=now,
                started_by=actor_id,
            )
            s.add(run)
            await s.flush()
            for step in sop.steps:
                s.add(RunStep(run_id=run.id or 0, step_key=step.key, number=step.number))
            await s.flush()
            await self._event(
                s,
                "run_started",
                run=run,
                actor_id=actor_id,
                title=title,
                sop=sop.key,
                sop_version=run.sop_version,
            )
            acts_first = (
                bool(roles & set(first.actors))
                and first.action == Action.confirm
                and first.files != "required"
            )
            rs = await self._open_step(
                s, run, sop, first.key, reason="silent" if acts_first else "opened"
            )
            if acts_first:
                await self._finish_step(s, run, sop, rs, actor_id, outcome="done", note=note)
            return run

    async def complete(self, actor_id: int, run_step_id: int, note: str | None = None) -> RunStep:
        """Selesai: finish a confirm, distribute, validate or meeting step."""
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            self._require_open(rs)
            a = await self._assignment_for(s, actor_id, rs)
            if step.action == Action.decide:
                raise InvalidInput("choose_outcome")
            if step.action == Action.collect:
                raise InvalidInput("upload_expected")
            if step.action == Action.meeting:
                raise InvalidInput("meeting_expected")
            if step.action == Action.validate:
                raise InvalidInput("review_expected")
            note = self._check_note(note, step.note)
            if step.files == "required":
                count = (
                    await s.exec(
                        select(func.count())
                        .select_from(StoredFile)
                        .where(StoredFile.run_step_id == rs.id)
                    )
                ).one()
                if not count:
                    raise FilesRequired()
            if step.action == Action.distribute:
                await self._distribute(s, run, sop, step, rs, actor_id)
            a.state, a.updated_at = AssignmentState.done, self.clock.now()
            s.add(a)
            await self._finish_step(s, run, sop, rs, actor_id, outcome="done", note=note)
            return rs

    def _require_open(self, rs: RunStep) -> None:
        if rs.state in (StepState.done, StepState.returned, StepState.skipped):
            raise AlreadyDone()
        if rs.state != StepState.open:
            raise StepNotOpen()

    async def _distribute(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep, actor_id: int
    ) -> None:
        files = await self._latest_files(s, run, step.files_from or "")
        if not files:
            raise FilesRequired()
        recipients: dict[int, Member] = {}
        for role in step.to_roles:
            for m in await self._holders(s, role):
                recipients[m.id or 0] = m
        context = self._step_context(run, sop, step, rs)
        for member in recipients.values():
            for f in files:
                await self._notify(
                    s,
                    member.id or 0,
                    "distributed",
                    f"dist:{rs.id}:{member.id}:{f.id}",
                    {**context, "name": f.original_name},
                    run=run,
                    run_step_id=rs.id,
                    file_id=f.id,
                )
        await self._event(
            s,
            "distributed",
            run=run,
            actor_id=actor_id,
            run_step_id=rs.id,
            files=[f.id for f in files],
            recipients=len(recipients),
            roles=step.to_roles,
        )

    async def decide(
        self, actor_id: int, run_step_id: int, outcome: str | int, note: str | None = None
    ) -> RunStep:
        """Choose one of a decision step's outcomes; the outcome picks the next step."""
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            self._require_open(rs)
            a = await self._assignment_for(s, actor_id, rs)
            if step.action != Action.decide:
                raise InvalidInput("not_a_decision")
            if isinstance(outcome, int):
                chosen = step.outcomes[outcome] if 0 <= outcome < len(step.outcomes) else None
            else:
                chosen = step.outcome(outcome)
            if chosen is None:
                raise InvalidInput("unknown_outcome")
            note = self._check_note(note, chosen.note)
            a.state, a.updated_at = AssignmentState.done, self.clock.now()
            s.add(a)
            await self._event(
                s,
                "decision",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                step=step.number,
                outcome=chosen.key,
                label=chosen.label,
                note=note,
            )
            actor = await self._member(s, actor_id)
            for role in chosen.notify:
                for m in await self._holders(s, role):
                    await self._notify(
                        s,
                        m.id or 0,
                        "decision",
                        f"decision:{rs.id}:{m.id}",
                        {
                            **self._step_context(run, sop, step, rs),
                            "label": chosen.label,
                            "note": note,
                            "by": actor.name,
                        },
                        run=run,
                        run_step_id=rs.id,
                    )
            state = StepState.returned if chosen.marks == "returned" else StepState.done
            await self._finish_step(
                s,
                run,
                sop,
                rs,
                actor_id,
                outcome=chosen.key,
                note=note,
                state=state,
                next_key=chosen.next,
            )
            return rs

    def _check_workbook(self, step: Step, incoming: IncomingFile) -> list[str]:
        """Mistakes found in a unit's workbook; a broken one is refused."""
        if step.workbook is None or extension_of(incoming.original_name) not in WORKBOOK_EXTENSIONS:
            return []
        try:
            return inspect_workbook(incoming.data, step.workbook)
        except BrokenWorkbook as exc:
            raise FileRejected("broken") from exc

    def check_file_size(self, size: int) -> str:
        if size <= 0:
            return "empty"
        if self.max_file_bytes is not None and size > self.max_file_bytes:
            return "too_big"
        return ""

    def check_file(self, step: Step, name: str, mime: str, kind: str, size: int) -> str:
        """Why a file cannot be taken for this step ('' when it can);
        callers use it before downloading, the engine again before storing."""
        reason = self.check_file_size(size)
        if reason:
            return reason
        ext = "jpg" if kind == "photo" else extension_of(name)
        if ext not in step.accept:
            return "type"
        return ""

    async def upload(
        self,
        actor_id: int,
        run_step_id: int,
        incoming: IncomingFile,
        *,
        unit_id: int | None = None,
    ) -> Receipt:
        """Keep a file for a step: a unit's delivery, or the step's document."""
        async with self.db.transaction() as s:
            member = await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            if step.action == Action.collect:
                if rs.state != StepState.open and not await self._collection_live(s, run, sop, rs):
                    self._require_open(rs)
            else:
                self._require_open(rs)
                if step.files == "none":
                    raise InvalidInput("no_files_here")
            a = await self._assignment_for(s, actor_id, rs, unit_id)
            if a.state == AssignmentState.accepted:
                raise AlreadyDone("accepted")
            if a.state == AssignmentState.closed:
                raise StepNotOpen()
            reason = self.check_file(
                step, incoming.original_name, incoming.mime_type, incoming.kind, len(incoming.data)
            )
            if reason:
                raise FileRejected(
                    reason, accept=step.accept, limit_mb=(self.max_file_bytes or 0) // (1024 * 1024)
                )
            checks = self._check_workbook(step, incoming)
            saved = self.storage.save(
                incoming.data, run_id=run.id or 0, original_name=incoming.original_name
            )
            previous = (
                await s.exec(
                    select(StoredFile)
                    .where(StoredFile.run_step_id == rs.id, StoredFile.assignment_id == a.id)
                    .order_by(col(StoredFile.version).desc(), col(StoredFile.id).desc())
                )
            ).all()
            same_batch = bool(
                previous
                and incoming.batch
                and previous[0].batch == incoming.batch
                and previous[0].review_state == ReviewState.received
            )
            if step.action == Action.collect and not same_batch:
                for old in previous:
                    if old.review_state == ReviewState.received:
                        old.review_state = ReviewState.superseded
                        s.add(old)
            version = 1
            if previous:
                version = previous[0].version if same_batch else previous[0].version + 1
            now = self.clock.now()
            stored = StoredFile(
                run_id=run.id or 0,
                run_step_id=rs.id or 0,
                assignment_id=a.id,
                unit_id=a.unit_id,
                uploader_id=actor_id,
                original_name=incoming.original_name[:255] or "berkas",
                mime_type=incoming.mime_type or "application/octet-stream",
                size=saved.size,
                sha256=saved.sha256,
                storage_path=saved.relative_path,
                version=version,
                batch=incoming.batch,
                kind=incoming.kind,
                telegram_file_id=incoming.telegram_file_id,
                received_at=now,
            )
            s.add(stored)
            await s.flush()
            unit_name = await self._unit_name(s, a.unit_id)
            await self._event(
                s,
                "file_received",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                file_id=stored.id,
                unit=unit_name,
                name=stored.original_name,
                mime=stored.mime_type,
                size=stored.size,
                sha256=stored.sha256,
                version=stored.version,
                path=stored.storage_path,
                checks=checks,
            )
            closed = False
            if step.action == Action.collect:
                a.state, a.updated_at = AssignmentState.delivered, now
                s.add(a)
                await s.flush()
                reviewer = step.reviewer
                if reviewer:
                    context = {
                        **self._step_context(run, sop, step, rs),
                        "unit_name": unit_name,
                        "name": stored.original_name,
                        "size": stored.size,
                        "version": stored.version,
                        "by": member.name,
                        "sha256": stored.sha256,
                        "file_id": stored.id,
                        "checks": checks,
                        "actions": [
                            TaskAction("acc", (stored.id or 0,)).as_dict(),
                            TaskAction("ret", (stored.id or 0,)).as_dict(),
                        ],
                    }
                    for m in await self._holders(s, reviewer):
                        await self._notify(
                            s,
                            m.id or 0,
                            "file_for_review",
                            f"review:{a.id}:{version}:{m.id}",
                            context,
                            run=run,
                            run_step_id=rs.id,
                            file_id=stored.id,
                        )
                if rs.state == StepState.open and await self._all_delivered(s, rs):
                    await self._finish_step(s, run, sop, rs, None, outcome="lengkap", note=None)
                    closed = True
            return Receipt(stored, run.title, step.number, unit_name, closed, checks)

    async def _all_delivered(self, s: AsyncSession, rs: RunStep) -> bool:
        assignments = (
            await s.exec(select(Assignment).where(Assignment.run_step_id == rs.id))
        ).all()
        return all(a.state not in OWING for a in assignments)

    async def _collection_live(
        self, s: AsyncSession, run: Run, sop: Sop, collect_rs: RunStep
    ) -> bool:
        """A closed collection still takes re-uploads while its validation is open."""
        for step in sop.steps:
            if step.action == Action.validate and step.collection == collect_rs.step_key:
                v = await self._latest_step(s, run, step.key)
                if v is not None and v.state == StepState.open:
                    return True
        return False

    async def _validation_for(
        self, s: AsyncSession, run: Run, sop: Sop, collect_key: str
    ) -> RunStep | None:
        for step in sop.steps:
            if step.action == Action.validate and step.collection == collect_key:
                v = await self._latest_step(s, run, step.key)
                if v is not None and v.state == StepState.open:
                    return v
        return None

    async def review(
        self, actor_id: int, file_id: int, *, accept: bool, note: str | None = None
    ) -> StoredFile:
        """Accept a unit's file, or return it with a note for a new upload."""
        async with self.db.transaction() as s:
            reviewer = await self._member(s, actor_id)
            stored = await s.get(StoredFile, file_id)
            if stored is None:
                raise NotFound("file")
            run, rs = await self._run_step(s, stored.run_step_id)
            await s.refresh(stored)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            if step.action != Action.collect or not step.reviewer:
                raise InvalidInput("not_reviewable")
            roles = {r.role for r in await self._roles(s, actor_id)}
            validation = await self._validation_for(s, run, sop, step.key)
            if step.reviewer not in roles:
                raise NotAllowed(roles=[step.reviewer])
            if rs.state != StepState.open and validation is None:
                raise (
                    AlreadyDone()
                    if rs.state in (StepState.done, StepState.returned)
                    else StepNotOpen()
                )
            if stored.review_state != ReviewState.received:
                raise AlreadyDone(stored.review_state.value)
            if not accept:
                note = self._check_note(note, "required")
            now = self.clock.now()
            pages = (
                await s.exec(
                    select(StoredFile).where(
                        StoredFile.assignment_id == stored.assignment_id,
                        StoredFile.version == stored.version,
                        StoredFile.review_state == ReviewState.received,
                    )
                )
            ).all()
            for page in pages:
                page.review_state = ReviewState.accepted if accept else ReviewState.returned
                page.review_note = None if accept else note
                page.reviewed_by, page.reviewed_at = actor_id, now
                s.add(page)
            a = await s.get(Assignment, stored.assignment_id) if stored.assignment_id else None
            if a is not None:
                a.state = AssignmentState.accepted if accept else AssignmentState.returned
                a.note, a.updated_at = (None if accept else note), now
                s.add(a)
            await s.flush()
            unit_name = await self._unit_name(s, stored.unit_id)
            await self._event(
                s,
                "file_accepted" if accept else "file_returned",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                file_id=stored.id,
                unit=unit_name,
                version=stored.version,
                note=note,
            )
            context = {
                **self._step_context(run, sop, step, rs),
                "unit_name": unit_name,
                "name": stored.original_name,
                "version": stored.version,
                "note": note,
                "by": reviewer.name,
            }
            if a is not None:
                for m in await self._assignees(s, a):
                    await self._notify(
                        s,
                        m.id or 0,
                        "file_accepted" if accept else "file_returned",
                        f"reviewed:{stored.id}:{m.id}",
                        {
                            **context,
                            "actions": []
                            if accept
                            else [TaskAction("up", (rs.id or 0,)).as_dict()],
                        },
                        run=run,
                        run_step_id=rs.id,
                        assignment_id=a.id,
                        file_id=stored.id,
                    )
            if accept and validation is not None and await self._collection_settled(s, rs):
                await self._finish_step(
                    s, run, sop, validation, actor_id, outcome="valid", note=None
                )
            return stored

    async def close_step(self, actor_id: int, run_step_id: int, reason: str) -> RunStep:
        """Close a collection or validation although units are missing; the
        reason is recorded."""
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            self._require_open(rs)
            roles = {r.role for r in await self._roles(s, actor_id)}
            if step.action == Action.collect:
                allowed = {step.reviewer} if step.reviewer else set()
            elif step.action == Action.validate:
                allowed = set(step.actors)
            else:
                raise InvalidInput("not_closable")
            if not roles & allowed:
                raise NotAllowed(roles=sorted(r for r in allowed if r))
            reason = self._check_note(reason, "required")
            target = rs
            if step.action == Action.validate:
                target = await self._latest_step(s, run, step.collection or "") or rs
            pending = []
            for a in (
                await s.exec(select(Assignment).where(Assignment.run_step_id == target.id))
            ).all():
                if a.state not in (AssignmentState.accepted, AssignmentState.closed):
                    if step.action == Action.collect and a.state == AssignmentState.delivered:
                        continue
                    pending.append(await self._unit_name(s, a.unit_id))
                    a.state, a.updated_at = AssignmentState.closed, self.clock.now()
                    s.add(a)
            await self._event(
                s,
                "step_closed",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                step=step.number,
                reason=reason,
                pending_units=pending,
            )
            await self._finish_step(s, run, sop, rs, actor_id, outcome="ditutup", note=reason)
            return rs

    async def schedule_meeting(
        self, actor_id: int, run_step_id: int, starts_at: datetime, place: str
    ) -> Meeting:
        """Set the meeting and invite; the invitation is the step's output."""
        async with self.db.transaction() as s:
            organiser = await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            self._require_open(rs)
            a = await self._assignment_for(s, actor_id, rs)
            if step.action != Action.meeting:
                raise InvalidInput("not_a_meeting")
            place = " ".join((place or "").split())
            if not place or len(place) > 200:
                raise InvalidInput("place_missing")
            if starts_at.tzinfo is None:
                raise InvalidInput("time_missing")
            if starts_at < self.clock.now():
                raise InvalidInput("time_past")
            meeting = Meeting(
                run_step_id=rs.id or 0, starts_at=starts_at, place=place, created_by=actor_id
            )
            s.add(meeting)
            await s.flush()
            invitees: dict[int, Member] = {}
            for role in step.invitees:
                for m in await self._holders(s, role):
                    invitees[m.id or 0] = m
            invitees.pop(actor_id, None)
            context = {
                **self._step_context(run, sop, step, rs),
                "meeting_id": meeting.id,
                "starts_at": iso(starts_at),
                "place": place,
                "by": organiser.name,
                "actions": [
                    TaskAction("rsvp", (meeting.id or 0, 1)).as_dict(),
                    TaskAction("rsvp", (meeting.id or 0, 0)).as_dict(),
                ],
            }
            for m in invitees.values():
                await self._notify(
                    s,
                    m.id or 0,
                    "meeting_invitation",
                    f"meeting:{meeting.id}:{m.id}",
                    context,
                    run=run,
                    run_step_id=rs.id,
                )
            await self._event(
                s,
                "meeting_scheduled",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                meeting_id=meeting.id,
                starts_at=iso(starts_at),
                place=place,
                invitees=[m.name for m in invitees.values()],
            )
            a.state = AssignmentState.done
            s.add(a)
            local = starts_at.astimezone(self.calendar.tz).strftime("%d-%m-%Y %H:%M")
            await self._finish_step(
                s, run, sop, rs, actor_id, outcome="diundang", note=f"Rapat {local}, {place}"
            )
            return meeting

    async def answer_meeting(self, actor_id: int, meeting_id: int, attending: bool) -> Attendance:
        """Hadir / Tidak hadir; a changed answer is recorded as a new event."""
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            meeting = await s.get(Meeting, meeting_id)
            if meeting is None:
                raise NotFound("meeting")
            run, rs = await self._run_step(s, meeting.run_step_id)
            step = self._sop(run).step(rs.step_key)
            roles = {r.role for r in await self._roles(s, actor_id)}
            if not roles & set(step.invitees):
                raise NotAllowed(roles=step.invitees)
            now = self.clock.now()
            if meeting.starts_at < now:
                raise StepNotOpen("meeting_over")
            existing = (
                await s.exec(
                    select(Attendance).where(
                        Attendance.meeting_id == meeting_id, Attendance.member_id == actor_id
                    )
                )
            ).first()
            if existing is not None and existing.attending == attending:
                raise AlreadyDone()
            if existing is None:
                existing = Attendance(
                    meeting_id=meeting_id, member_id=actor_id, attending=attending, answered_at=now
                )
            existing.attending, existing.answered_at = attending, now
            s.add(existing)
            await s.flush()
            await self._event(
                s,
                "attendance",
                run=run,
                actor_id=actor_id,
                meeting_id=meeting_id,
                attending=attending,
            )
            return existing

    async def reassign(self, actor_id: int, assignment_id: int, to_member_id: int) -> Assignment:
        """Delegate an assignment to another member; both names are recorded."""
        async with self.db.transaction() as s:
            actor = await self._member(s, actor_id)
            a = await s.get(Assignment, assignment_id)
            if a is None:
                raise NotFound("assignment")
            run, rs = await self._run_step(s, a.run_step_id)
            await s.refresh(a)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            if rs.state != StepState.open or a.state not in OWING:
                raise AlreadyDone()
            roles = {r.role for r in await self._roles(s, actor_id)}
            if not (ADMIN in roles or await self._may_act(s, actor_id, a)):
                raise NotAllowed(roles=[a.role, ADMIN])
            target = await s.get(Member, to_member_id)
            if target is None or not target.active:
                raise NotFound("member")
            if a.member_id == to_member_id:
                raise AlreadyDone()
            before = [m.name for m in await self._assignees(s, a)]
            a.member_id, a.delegated_by, a.updated_at = to_member_id, actor_id, self.clock.now()
            s.add(a)
            await s.flush()
            await self._event(
                s,
                "reassigned",
                run=run,
                actor_id=actor_id,
                assignment_id=a.id,
                run_step_id=rs.id,
                step=step.number,
                by=actor.name,
                from_members=before,
                to_member=target.name,
            )
            await self._send_task(
                s, run, sop, step, rs, a, target, reason=f"delegated{a.id}-{to_member_id}"
            )
            return a

    async def cancel_run(self, actor_id: int, run_id: int, reason: str) -> Run:
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            run = await self._lock_run(s, run_id)
            sop = self._sop(run)
            roles = {r.role for r in await self._roles(s, actor_id)}
            if not roles & (set(sop.first.actors) | {ADMIN}):
                raise NotAllowed(roles=[*sop.first.actors, ADMIN])
            reason = self._check_note(reason, "required")
            now = self.clock.now()
            involved = await self._involved(s, run)
            run.state, run.ended_at, run.cancel_reason = RunState.cancelled, now, reason
            s.add(run)
            for rs in (
                await s.exec(
                    select(RunStep).where(
                        RunStep.run_id == run.id,
                        col(RunStep.state).in_([StepState.open, StepState.waiting]),
                    )
                )
            ).all():
                rs.state = StepState.skipped
                s.add(rs)
            await s.flush()
            await self._event(s, "run_cancelled", run=run, actor_id=actor_id, reason=reason)
            for member_id in involved:
                await self._notify(
                    s,
                    member_id,
                    "run_cancelled",
                    f"run_cancelled:{run.id}:{member_id}",
                    {"run_title": run.title, "reason": reason},
                    run=run,
                )
            return run

    # ------------------------------------------------------------------ checks

    async def authorize(
        self,
        actor_id: int,
        run_step_id: int,
        *,
        unit_id: int | None = None,
        purpose: str = "act",
    ) -> Task:
        """Would this member be allowed to act on the step now? Raises the
        same refusals the command would; asked before a prompt or a download
        so a person is not asked for something they cannot give."""
        async with self.db.session() as s:
            await self._member(s, actor_id)
            rs = await s.get(RunStep, run_step_id)
            if rs is None:
                raise NotFound("step")
            run = await s.get(Run, rs.run_id)
            assert run is not None
            if run.state != RunState.open:
                raise RunClosed(run_title=run.title, state=run.state.value)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            roles = {r.role for r in await self._roles(s, actor_id)}
            if purpose == "close":
                allowed = {step.reviewer} if step.action == Action.collect else set(step.actors)
                if step.action not in (Action.collect, Action.validate):
                    raise InvalidInput("not_closable")
                if not roles & allowed:
                    raise NotAllowed(roles=sorted(r for r in allowed if r))
                self._require_open(rs)
                return self._task(run, step, rs, None, None)
            if step.action == Action.collect:
                if rs.state != StepState.open and not await self._collection_live(s, run, sop, rs):
                    self._require_open(rs)
            else:
                self._require_open(rs)
            if purpose == "upload" and step.action != Action.collect and step.files == "none":
                raise InvalidInput("no_files_here")
            a = await self._assignment_for(s, actor_id, rs, unit_id)
            if a.state == AssignmentState.accepted:
                raise AlreadyDone("accepted")
            if a.state in (AssignmentState.closed, AssignmentState.done):
                raise AlreadyDone()
            return self._task(run, step, rs, a, await self._unit_name(s, a.unit_id))

    def _task(
        self, run: Run, step: Step, rs: RunStep, a: Assignment | None, unit_name: str | None
    ) -> Task:
        return Task(
            run_id=run.id or 0,
            run_title=run.title,
            run_step_id=rs.id or 0,
            number=step.number,
            step_key=step.key,
            uraian=step.uraian,
            action=step.action.value,
            due_at=rs.due_at,
            opened_at=rs.opened_at,
            waktu=step.waktu,
            assignment_id=a.id if a else None,
            unit_id=a.unit_id if a else None,
            unit_name=unit_name,
            state=a.state.value if a else rs.state.value,
            note=a.note if a else None,
            actions=self._actions(step, rs, a),
        )

    async def check_upload(
        self,
        actor_id: int,
        run_step_id: int,
        *,
        name: str,
        mime: str,
        kind: str,
        size: int | None,
        unit_id: int | None = None,
    ) -> Task:
        """Refuse a file before it is downloaded (size, type, who, when)."""
        task = await self.authorize(actor_id, run_step_id, unit_id=unit_id, purpose="upload")
        async with self.db.session() as s:
            rs = await s.get(RunStep, run_step_id)
            run = await s.get(Run, rs.run_id) if rs else None
        assert rs is not None and run is not None
        step = self._sop(run).step(rs.step_key)
        # An unknown size (Telegram may omit it) is checked after download.
        reason = self.check_file(step, name, mime, kind, 1 if size is None else size)
        if reason:
            raise FileRejected(
                reason, accept=step.accept, limit_mb=(self.max_file_bytes or 0) // (1024 * 1024)
            )
        return task

    async def check_review(self, actor_id: int, file_id: int) -> StoredFile:
        """May this member review this file now (before asking for a note)?"""
        async with self.db.session() as s:
            await self._member(s, actor_id)
            stored = await s.get(StoredFile, file_id)
            if stored is None:
                raise NotFound("file")
            rs = await s.get(RunStep, stored.run_step_id)
            run = await s.get(Run, stored.run_id)
            assert rs is not None and run is not None
            if run.state != RunState.open:
                raise RunClosed(run_title=run.title, state=run.state.value)
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            if step.action != Action.collect or not step.reviewer:
                raise InvalidInput("not_reviewable")
            if step.reviewer not in {r.role for r in await self._roles(s, actor_id)}:
                raise NotAllowed(roles=[step.reviewer])
            if (
                rs.state != StepState.open
                and await self._validation_for(s, run, sop, step.key) is None
            ):
                raise AlreadyDone()
            if stored.review_state != ReviewState.received:
                raise AlreadyDone(stored.review_state.value)
            return stored

    # ------------------------------------------------------------------ queries

    async def tasks(self, member_id: int) -> list[Task]:
        """The member's open tasks, oldest first, each with its actions."""
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    select(Assignment, RunStep, Run)
                    .join(RunStep, col(RunStep.id) == col(Assignment.run_step_id))
                    .join(Run, col(Run.id) == col(RunStep.run_id))
                    .where(
                        Run.state == RunState.open,
                        col(Assignment.state).in_([*OWING, AssignmentState.delivered]),
                    )
                    .order_by(col(RunStep.opened_at), col(Assignment.id))
                )
            ).all()
            tasks = []
            for a, rs, run in rows:
                if not await self._may_act(s, member_id, a):
                    continue
                sop = self._sop(run)
                step = sop.step(rs.step_key)
                # A unit may still send a new version before review.
                live = rs.state == StepState.open or (
                    step.action == Action.collect
                    and a.state in (*OWING, AssignmentState.delivered)
                    and await self._collection_live(s, run, sop, rs)
                )
                if not live:
                    continue
                if step.action == Action.collect and a.state == AssignmentState.delivered:
                    state = "delivered"
                else:
                    state = a.state.value
                tasks.append(
                    Task(
                        run_id=run.id or 0,
                        run_title=run.title,
                        run_step_id=rs.id or 0,
                        number=step.number,
                        step_key=step.key,
                        uraian=step.uraian,
                        action=step.action.value,
                        due_at=rs.due_at,
                        opened_at=rs.opened_at,
                        waktu=step.waktu,
                        assignment_id=a.id,
                        unit_id=a.unit_id,
                        unit_name=await self._unit_name(s, a.unit_id),
                        state=state,
                        note=a.note,
                        actions=self._actions(step, rs, a),
                    )
                )
            # A reviewer follows the collection while it is open.
            roles = {r.role for r in await self._roles(s, member_id)}
            open_steps = (
                await s.exec(
                    select(RunStep, Run)
                    .join(Run, col(Run.id) == col(RunStep.run_id))
                    .where(Run.state == RunState.open, RunStep.state == StepState.open)
                )
            ).all()
            for rs, run in open_steps:
                step = self._sop(run).step(rs.step_key)
                if step.action == Action.collect and step.reviewer in roles:
                    tasks.append(
                        Task(
                            run_id=run.id or 0,
                            run_title=run.title,
                            run_step_id=rs.id or 0,
                            number=step.number,
                            step_key=step.key,
                            uraian=step.uraian,
                            action="review",
                            due_at=rs.due_at,
                            opened_at=rs.opened_at,
                            waktu=step.waktu,
                            state="open",
                            actions=[
                                TaskAction("view", (rs.id or 0,)),
                                TaskAction("cls", (rs.id or 0,)),
                            ],
                        )
                    )
            return tasks

    async def upload_targets(self, member_id: int) -> list[Task]:
        """Tasks that take a file now (for a file sent without context)."""
        return [t for t in await self.tasks(member_id) if any(a.verb == "up" for a in t.actions)]

    async def collection(self, member_id: int, run_step_id: int) -> tuple[Run, list[UnitDelivery]]:
        """Each unit's latest file and state, for the reviewer. Accepts the
        collect step or its validation step."""
        async with self.db.session() as s:
            rs = await s.get(RunStep, run_step_id)
            if rs is None:
                raise NotFound("step")
            run = await s.get(Run, rs.run_id)
            assert run is not None
            sop = self._sop(run)
            step = sop.step(rs.step_key)
            if step.action == Action.validate:
                collect = await self._latest_step(s, run, step.collection or "")
                if collect is None:
                    raise NotFound("step")
                rs, step = collect, sop.step(collect.step_key)
            if step.action != Action.collect:
                raise InvalidInput("not_reviewable")
            roles = {r.role for r in await self._roles(s, member_id)}
            if step.reviewer not in roles and ADMIN not in roles:
                raise NotAllowed(roles=[step.reviewer or ""])
            result = []
            for a in (
                await s.exec(
                    select(Assignment)
                    .where(Assignment.run_step_id == rs.id)
                    .order_by(Assignment.unit_id)
                )
            ).all():
                files = (
                    await s.exec(
                        select(StoredFile)
                        .where(StoredFile.assignment_id == a.id)
                        .order_by(col(StoredFile.id).desc())
                    )
                ).all()
                live = [f for f in files if f.review_state != ReviewState.superseded]
                result.append(
                    UnitDelivery(
                        assignment_id=a.id or 0,
                        unit_id=a.unit_id or 0,
                        unit_name=await self._unit_name(s, a.unit_id) or "",
                        state=a.state.value,
                        file=live[0] if live else None,
                        versions=len(files),
                    )
                )
            return run, result

    async def run_status(
        self, run_id: int | None = None, *, include_closed: bool = False
    ) -> list[RunStatus]:
        """Open runs (or one run): each step with actor, state, time used and lateness."""
        now = self.clock.now()
        async with self.db.session() as s:
            query = select(Run).order_by(Run.id)
            if run_id is not None:
                query = query.where(Run.id == run_id)
            elif not include_closed:
                query = query.where(Run.state == RunState.open)
            result = []
            for run in (await s.exec(query)).all():
                sop = self._sop(run)
                steps = (
                    await s.exec(
                        select(RunStep)
                        .where(RunStep.run_id == run.id)
                        .order_by(RunStep.number, RunStep.iteration)
                    )
                ).all()
                statuses = []
                for rs in steps:
                    step = sop.step(rs.step_key)
                    end = rs.done_at or (now if rs.state == StepState.open else None)
                    used = (
                        round(self.calendar.working_minutes_between(rs.opened_at, end), 1)
                        if rs.opened_at and end
                        else None
                    )
                    late = None
                    if rs.due_at and end and end > rs.due_at:
                        late = round(self.calendar.working_minutes_between(rs.due_at, end), 1)
                    pending = []
                    if step.action == Action.collect and rs.state == StepState.open:
                        for a in (
                            await s.exec(select(Assignment).where(Assignment.run_step_id == rs.id))
                        ).all():
                            if a.state in OWING:
                                pending.append(await self._unit_name(s, a.unit_id) or "")
                    statuses.append(
                        StepStatus(
                            run_step_id=rs.id or 0,
                            number=rs.number,
                            key=rs.step_key,
                            uraian=step.uraian,
                            actors=[sop.roles[r].name for r in step.actors],
                            state=rs.state.value,
                            iteration=rs.iteration,
                            waktu=step.waktu,
                            opened_at=rs.opened_at,
                            due_at=rs.due_at,
                            done_at=rs.done_at,
                            used_minutes=used,
                            late_minutes=late,
                            pending_units=pending,
                        )
                    )
                result.append(
                    RunStatus(
                        run.id or 0,
                        run.title,
                        sop.name,
                        run.state.value,
                        run.started_at,
                        statuses,
                        run.reminders_paused,
                    )
                )
            return result

    async def events(
        self, run_id: int, *, offset: int = 0, limit: int = 20
    ) -> tuple[list[Event], int]:
        async with self.db.session() as s:
            total = (
                await s.exec(select(func.count()).select_from(Event).where(Event.run_id == run_id))
            ).one()
            rows = (
                await s.exec(
                    select(Event)
                    .where(Event.run_id == run_id)
                    .order_by(Event.seq)
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
            return list(rows), total

    async def runs(self, *, open_only: bool = True) -> Sequence[Run]:
        async with self.db.session() as s:
            query = select(Run).order_by(col(Run.id).desc())
            if open_only:
                query = query.where(Run.state == RunState.open)
            return (await s.exec(query)).all()

    async def file(self, file_id: int) -> StoredFile:
        async with self.db.session() as s:
            stored = await s.get(StoredFile, file_id)
            if stored is None:
                raise NotFound("file")
            return stored
