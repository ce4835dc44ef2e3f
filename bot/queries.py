"""Questions about runs: who may act now, what is open, how late it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import (
    AlreadyDone,
    FileRejected,
    InvalidInput,
    NotAllowed,
    NotFound,
    RunClosed,
    StepNotOpen,
)
from bot.models import (
    Assignment,
    AssignmentState,
    Event,
    Member,
    MemberRole,
    ReviewState,
    Run,
    RunState,
    RunStep,
    StepState,
    StoredFile,
    Unit,
)
from bot.sop import Action, Step
from bot.transitions import Transitions, assignments_of_open_runs
from bot.views import (
    ADMIN,
    OWING,
    Delegate,
    Holder,
    RunStatus,
    StepStatus,
    Task,
    TaskAction,
    UnitDelivery,
)

MAX_DELEGATES = 40


class RunQueries(Transitions):
    """Read-only views and pre-checks; no state changes here."""

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
            sop = await self._sop(s, run)
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
            if a.state == AssignmentState.closed and step.action == Action.collect:
                raise await self._closed_refusal(s, run, a)
            if a.state in (AssignmentState.closed, AssignmentState.done):
                raise AlreadyDone()
            return self._task(run, step, rs, a, await self._unit_name(s, a.unit_id))

    async def closable_units(
        self, actor_id: int, run_step_id: int
    ) -> tuple[Task, list[tuple[int, str]]]:
        """The units the reviewer may close on this step now, for the choice
        of one unit or all of them."""
        task = await self.authorize(actor_id, run_step_id, purpose="close")
        async with self.db.session() as s:
            rs = await s.get(RunStep, run_step_id)
            run = await s.get(Run, rs.run_id) if rs else None
            assert rs is not None and run is not None
            sop = await self._sop(s, run)
            step = sop.step(rs.step_key)
            target = rs
            if step.action == Action.validate:
                target = await self._latest_step(s, run, step.collection or "") or rs
            return task, [
                (a.unit_id or 0, await self._unit_name(s, a.unit_id) or "")
                for a in await self._closable(s, step, target)
            ]

    async def require_role(self, actor_id: int, roles: Sequence[str]) -> None:
        """Refuse unless the member holds one of `roles` (admins always may)."""
        async with self.db.session() as s:
            await self._member(s, actor_id)
            held = {r.role for r in await self._roles(s, actor_id)}
        allowed = [*roles, ADMIN]
        if not held & set(allowed):
            raise NotAllowed(roles=allowed)

    async def open_step_id(self, run_id: int, number: int) -> int:
        """The open step with this number in the run (for commands that name
        a step by its number, like /tenggat)."""
        async with self.db.session() as s:
            if await s.get(Run, run_id) is None:
                raise NotFound("run")
            rs = (
                await s.exec(
                    select(RunStep).where(
                        RunStep.run_id == run_id,
                        RunStep.number == number,
                        RunStep.state == StepState.open,
                    )
                )
            ).first()
        if rs is None:
            raise StepNotOpen()
        return rs.id or 0

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
            can_delegate=a is not None and a.state in OWING and rs.state == StepState.open,
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
            step = (await self._sop(s, run)).step(rs.step_key)
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
            sop = await self._sop(s, run)
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
            await self._require_unreviewed(s, stored)
            return stored

    # ------------------------------------------------------------------ queries

    async def tasks(self, member_id: int) -> list[Task]:
        """The member's open tasks, oldest first, each with its actions."""
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    assignments_of_open_runs(
                        [*OWING, AssignmentState.delivered], open_steps=False
                    ).order_by(col(RunStep.opened_at), col(Assignment.id))
                )
            ).all()
            tasks = []
            for a, rs, run in rows:
                if not await self._may_act(s, member_id, a):
                    continue
                sop = await self._sop(s, run)
                step = sop.step(rs.step_key)
                # A unit may still send a new version before review.
                live = rs.state == StepState.open or (
                    step.action == Action.collect
                    and a.state in (*OWING, AssignmentState.delivered)
                    and await self._collection_live(s, run, sop, rs)
                )
                if not live:
                    continue
                tasks.append(self._task(run, step, rs, a, await self._unit_name(s, a.unit_id)))
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
                step = (await self._sop(s, run)).step(rs.step_key)
                if step.action == Action.collect and step.reviewer in roles:
                    follow = self._task(run, step, rs, None, None)
                    follow.action, follow.state = "review", "open"
                    follow.actions = [
                        TaskAction("view", (rs.id or 0,)),
                        TaskAction("cls", (rs.id or 0,)),
                    ]
                    tasks.append(follow)
            return tasks

    async def closed_for(self, member_id: int) -> StepNotOpen | None:
        """Why a file sent without context is not taken, when the member's unit
        was closed on a collection that still runs (else None)."""
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    select(Assignment, RunStep, Run)
                    .join(RunStep, col(RunStep.id) == col(Assignment.run_step_id))
                    .join(Run, col(Run.id) == col(RunStep.run_id))
                    .where(Run.state == RunState.open, Assignment.state == AssignmentState.closed)
                    .order_by(col(Assignment.updated_at).desc())
                )
            ).all()
            for a, rs, run in rows:
                sop = await self._sop(s, run)
                if sop.step(rs.step_key).action != Action.collect:
                    continue
                live = rs.state == StepState.open or await self._collection_live(s, run, sop, rs)
                if live and await self._may_act(s, member_id, a):
                    return await self._closed_refusal(s, run, a)
        return None

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
            sop = await self._sop(s, run)
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
            held = await self._held(s)
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
                pages = sorted(
                    (f for f in live if f.version == live[0].version), key=lambda f: f.id or 0
                )
                result.append(
                    UnitDelivery(
                        assignment_id=a.id or 0,
                        unit_id=a.unit_id or 0,
                        unit_name=await self._unit_name(s, a.unit_id) or "",
                        state=a.state.value,
                        file=pages[0] if pages else None,
                        pages=pages,
                        versions=len(files),
                        has_members=await self._staffed(s, a, held),
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
            units = {u.id: u.name for u in (await s.exec(select(Unit))).all()}
            names: dict[tuple[int | None, str, int | None], tuple[str, ...]] = {}
            for run in (await s.exec(query)).all():
                sop = await self._sop(s, run)
                steps = (
                    await s.exec(
                        select(RunStep)
                        .where(RunStep.run_id == run.id)
                        .order_by(RunStep.number, RunStep.iteration)
                    )
                ).all()
                by_step: dict[int, list[Assignment]] = {}
                for a in (
                    await s.exec(
                        select(Assignment)
                        .join(RunStep, col(RunStep.id) == col(Assignment.run_step_id))
                        .where(RunStep.run_id == run.id)
                        .order_by(Assignment.id)
                    )
                ).all():
                    by_step.setdefault(a.run_step_id, []).append(a)
                statuses = []
                for rs in steps:
                    step = sop.step(rs.step_key)
                    spent, behind = await self.step_times(s, run, step, rs, now)
                    used = round(spent, 1) if spent is not None else None
                    late = round(behind, 1) if behind else None
                    pending, holders, unstaffed, without_members = [], [], [], []
                    for a in by_step.get(rs.id or 0, []):
                        unit = units.get(a.unit_id) if a.unit_id else None
                        key = (a.member_id, a.role, a.unit_id)
                        if key not in names:
                            names[key] = tuple(m.name for m in await self._assignees(s, a))
                        holders.append(Holder(unit or sop.roles[a.role].name, names[key]))
                        if rs.state != StepState.open or a.state not in OWING:
                            continue
                        if names[key]:
                            if step.action == Action.collect:
                                pending.append(unit or "")
                        elif unit:
                            without_members.append(unit)
                        else:
                            unstaffed.append(sop.roles[a.role].name)
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
                            unstaffed=unstaffed,
                            units_without_members=without_members,
                            holders=holders,
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

    async def open_holders(self) -> dict[int, list[dict[str, Any]]]:
        """For the morning digest: per open step of every open run, the people
        who hold each assignment still owed (a delegate in place of the role),
        with the unit where the step is per unit."""
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    assignments_of_open_runs(list(OWING)).order_by(
                        col(Assignment.run_step_id), col(Assignment.unit_id), col(Assignment.id)
                    )
                )
            ).all()
            result: dict[int, list[dict[str, Any]]] = {}
            for a, rs, run in rows:
                sop = await self._sop(s, run)
                role = sop.roles[a.role].name if a.role in sop.roles else a.role
                result.setdefault(rs.id or 0, []).append(
                    {
                        "role_name": role,
                        "unit_name": await self._unit_name(s, a.unit_id),
                        "names": [m.name for m in await self._assignees(s, a)],
                        "delegated": a.member_id is not None,
                    }
                )
            return result

    async def _held(self, s: AsyncSession) -> set[tuple[str, int | None]]:
        """Every (role, unit) an active member holds, and (role, None) for any
        holder of the role: one query, so /status need not ask per assignment."""
        rows = (
            await s.exec(
                select(MemberRole.role, MemberRole.unit_id)
                .join(Member, col(Member.id) == col(MemberRole.member_id))
                .where(col(Member.active).is_(True))
            )
        ).all()
        return {(role, u) for role, unit in rows for u in (unit, None)}

    async def _staffed(
        self, s: AsyncSession, a: Assignment, held: set[tuple[str, int | None]]
    ) -> bool:
        """Does someone hold this assignment now (as _assignees would find)?"""
        if a.member_id is not None:
            return bool(await self._assignees(s, a))
        return (a.role, a.unit_id) in held

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

    async def outcome_labels(self, run_id: int) -> dict[str, str]:
        """The run's SOP labels of decision outcomes ("step:outcome" -> label)."""
        async with self.db.session() as s:
            run = await s.get(Run, run_id)
            if run is None:
                raise NotFound("run")
            return (await self._sop(s, run)).outcome_labels()

    async def runs(self, *, open_only: bool = True) -> Sequence[Run]:
        async with self.db.session() as s:
            query = select(Run).order_by(col(Run.id).desc())
            if open_only:
                query = query.where(Run.state == RunState.open)
            return (await s.exec(query)).all()

    async def pages(self, file_id: int) -> list[StoredFile]:
        """The pages of the delivery a file belongs to (itself alone when it
        is no album), so a review can say it covered all of them."""
        async with self.db.session() as s:
            stored = await s.get(StoredFile, file_id)
            if stored is None:
                raise NotFound("file")
            return await self._album_pages(s, stored)

    async def file(self, file_id: int) -> StoredFile:
        async with self.db.session() as s:
            stored = await s.get(StoredFile, file_id)
            if stored is None:
                raise NotFound("file")
            return stored

    async def delegation_candidates(self, actor_id: int, assignment_id: int) -> list[Delegate]:
        """Who the actor could hand this assignment to: only colleagues who
        could hold it themselves (the same role, and the same unit for a
        per-unit step), so a unit's data never goes to another unit."""
        async with self.db.session() as s:
            await self._member(s, actor_id)
            a = await s.get(Assignment, assignment_id)
            if a is None:
                raise NotFound("assignment")
            rs = await s.get(RunStep, a.run_step_id)
            run = await s.get(Run, rs.run_id) if rs else None
            assert rs is not None and run is not None
            if run.state != RunState.open:
                raise RunClosed(run_title=run.title, state=run.state.value)
            if rs.state != StepState.open or a.state not in OWING:
                raise AlreadyDone()
            roles = {r.role for r in await self._roles(s, actor_id)}
            if not (ADMIN in roles or await self._may_act(s, actor_id, a)):
                await self._refuse_if_delegated(s, actor_id, [a])
                raise NotAllowed(roles=[a.role, ADMIN])
            sop = await self._sop(s, run)
            role_name = sop.roles[a.role].name if a.role in sop.roles else a.role
            unit_name = await self._unit_name(s, a.unit_id)
            return [
                Delegate(m.id or 0, m.name, role_name, unit_name)
                for m in await self._holders(s, a.role, a.unit_id)
                if m.id not in (actor_id, a.member_id)
            ][:MAX_DELEGATES]
