"""Questions people ask: my tasks, a run's status, a collection's files,
the history. Each opens a read-only session; nothing here changes state.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, bindparam, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.db import plain_rows, table
from bot.errors import InvalidInput, NotFound, StepNotOpen
from bot.models import (
    Assignment,
    AssignmentState,
    Event,
    Meeting,
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
from bot.run.actions import draft_action, follow_actions, task_view
from bot.run.drafts import DRAFT
from bot.run.kit import RunKit
from bot.run.reads import Reads, assignments_of_open_runs, latest_opened, role_name, validated
from bot.run.rules import Rules
from bot.sop import Action
from bot.verbs import Verb
from bot.views import (
    OWING,
    Holder,
    RunStatus,
    StepStatus,
    Task,
    UnitDelivery,
)

# Built once (ARCHITECTURE, "Statements built once"): /tugas asks them on
# every update, and building them cost about as much as running them.
_HOLDS = select(MemberRole.id).where(
    col(MemberRole.member_id) == bindparam("member_id"),
    col(MemberRole.role) == col(Assignment.role),
    or_(col(Assignment.unit_id).is_(None), col(Assignment.unit_id) == col(MemberRole.unit_id)),
)
# A member's assignments of open runs still owed or delivered: their own, or
# their role's (in their unit) where nobody was named; with step, run, unit.
_TASKS = (
    select(Assignment, RunStep, Run, Unit)
    .join(RunStep, col(RunStep.id) == col(Assignment.run_step_id))
    .join(Run, col(Run.id) == col(RunStep.run_id))
    .join(Unit, col(Unit.id) == col(Assignment.unit_id), isouter=True)
    .where(
        Run.state == RunState.open,
        col(Assignment.state).in_([*OWING, AssignmentState.delivered]),
        or_(
            col(Assignment.member_id) == bindparam("member_id"),
            and_(col(Assignment.member_id).is_(None), _HOLDS.exists()),
        ),
    )
    .order_by(col(RunStep.opened_at), col(Assignment.id))
)
_OPEN_STEPS = (
    select(RunStep, Run)
    .join(Run, col(Run.id) == col(RunStep.run_id))
    .where(Run.state == RunState.open, RunStep.state == StepState.open)
    .order_by(col(RunStep.id))
)


_UNITS = select(Unit)


_StatusReads = tuple[
    SelectOfScalar[Run],
    sa.Select[Any],
    sa.Select[Any],
    SelectOfScalar[Meeting],
]
_RS, _A = table(RunStep), table(Assignment)


@functools.cache
def _status_reads(which: str) -> _StatusReads:
    """run_status's reads of the chosen runs ("one" by :run_id, the "open"
    ones, or "all"): the runs, their steps, their assignments, their
    meetings. Built once per choice, as /status asks them on every update.
    Steps and assignments, fifteen and more per run, come as plain rows of
    the columns the view uses (bot/db.py, `plain_rows`)."""
    chosen = select(Run.id)
    if which == "one":
        chosen = chosen.where(col(Run.id) == bindparam("run_id"))
    elif which == "open":
        chosen = chosen.where(Run.state == RunState.open)
    return (
        select(Run).where(col(Run.id).in_(chosen)).order_by(col(Run.id)),
        sa.select(
            _RS.c.id,
            _RS.c.run_id,
            _RS.c.step_key,
            _RS.c.number,
            _RS.c.iteration,
            _RS.c.state,
            _RS.c.opened_at,
            _RS.c.due_at,
            _RS.c.done_at,
        )
        .where(_RS.c.run_id.in_(chosen))
        .order_by(_RS.c.run_id, _RS.c.number, _RS.c.iteration),
        sa.select(_A.c.run_step_id, _A.c.role, _A.c.unit_id, _A.c.member_id, _A.c.state)
        .join(_RS, _RS.c.id == _A.c.run_step_id)
        .where(_RS.c.run_id.in_(chosen))
        .order_by(_A.c.id),
        select(Meeting)
        .join(RunStep, col(RunStep.id) == col(Meeting.run_step_id))
        .where(col(RunStep.run_id).in_(chosen))
        .order_by(col(Meeting.id)),
    )


class Queries:
    def __init__(self, kit: RunKit, reads: Reads, rules: Rules) -> None:
        self.kit = kit
        self.reads = reads
        self.rules = rules

    async def tasks(self, member_id: int) -> list[Task]:
        """The member's open tasks, oldest first, each with its actions.
        Four queries whatever the number of runs: the member's roles, their
        assignments (with step, run and unit), the open steps of open runs
        (for a collection still live under its validation, and the
        collections a reviewer follows), and a run's definition when it is
        not in memory yet."""
        async with self.kit.db.session() as s:
            roles = await self.reads.role_rows(s, member_id)
            rows = (await s.exec(_TASKS, params={"member_id": member_id})).all()
            open_steps = (await s.exec(_OPEN_STEPS)).all()
            open_keys: dict[int, set[str]] = {}
            for rs, run in open_steps:
                open_keys.setdefault(run.id or 0, set()).add(rs.step_key)
            tasks = []
            drafted: list[tuple[Task, str | None]] = []  # steps the bot drafts for
            for a, rs, run, unit in rows:
                if not await self.rules.may_act(s, member_id, a, roles):
                    continue
                sop = await self.kit.sop_of(s, run)
                step = sop.step(rs.step_key)
                # A unit may still send a new version before review.
                live = rs.state == StepState.open or (
                    step.action == Action.collect
                    and validated(sop, rs.step_key, open_keys.get(run.id or 0, set()))
                )
                if live:
                    task = task_view(run, step, rs, a, unit.name if unit else None)
                    tasks.append(task)
                    if step.draft and rs.state == StepState.open:
                        drafted.append((task, step.draft))
            await self._offer_drafts(s, drafted)
            # A reviewer follows the collection while it is open.
            held = {r.role for r in roles}
            for rs, run in open_steps:
                step = (await self.kit.sop_of(s, run)).step(rs.step_key)
                if step.action == Action.collect and step.reviewer in held:
                    follow = task_view(run, step, rs, None, None)
                    follow.action, follow.state = "review", "open"
                    follow.actions = follow_actions(rs.id or 0)
                    tasks.append(follow)
            return tasks

    async def _offer_drafts(self, s: AsyncSession, drafted: list[tuple[Task, str | None]]) -> None:
        """The bot's draft of each of these steps, offered on the task as on
        its task message (Gunakan draf ini, first), and named: one query for
        all, none when no listed step is drafted."""
        if not drafted:
            return
        ids = [task.run_step_id for task, _ in drafted]
        drafts: dict[int, StoredFile] = {}
        for f in (
            await s.exec(
                select(StoredFile)
                .where(col(StoredFile.run_step_id).in_(ids), StoredFile.kind == DRAFT)
                .order_by(col(StoredFile.id))
            )
        ).all():
            drafts[f.run_step_id] = f  # the latest draft of each step's opening
        for task, kind in drafted:
            draft = drafts.get(task.run_step_id)
            if draft is not None:
                task.actions = [draft_action(task.run_step_id, draft.id or 0, kind), *task.actions]
                task.draft_name = draft.original_name

    async def upload_targets(self, member_id: int) -> list[Task]:
        """Tasks that take a file now (for a file sent without context)."""
        return [t for t in await self.tasks(member_id) if any(a.verb == Verb.up for a in t.actions)]

    async def closed_for(self, member_id: int) -> StepNotOpen | None:
        """Why a file sent without context is not taken, when the member's unit
        was closed on a collection that still runs (else None)."""
        async with self.kit.db.session() as s:
            rows = (
                await s.exec(
                    assignments_of_open_runs([AssignmentState.closed], open_steps=False).order_by(
                        col(Assignment.updated_at).desc()
                    )
                )
            ).all()
            for a, rs, run in rows:
                sop = await self.kit.sop_of(s, run)
                if sop.step(rs.step_key).action != Action.collect:
                    continue
                live = rs.state == StepState.open or await self.reads.collection_live(
                    s, run, sop, rs
                )
                if live and await self.rules.may_act(s, member_id, a):
                    return await self.rules.closed_refusal(s, a)
        return None

    async def collection(self, member_id: int, run_step_id: int) -> tuple[Run, list[UnitDelivery]]:
        """Each unit's latest file and state, for the reviewer. Accepts the
        collect step or its validation step."""
        async with self.kit.db.session() as s:
            rs = await s.get(RunStep, run_step_id)
            if rs is None:
                raise NotFound("step")
            run = await s.get(Run, rs.run_id)
            if run is None:
                raise NotFound("run")
            sop = await self.kit.sop_of(s, run)
            step = sop.step(rs.step_key)
            if step.action == Action.validate:
                collect = await self.reads.latest_step(s, run, step.collection or "")
                if collect is None:
                    raise NotFound("step")
                rs, step = collect, sop.step(collect.step_key)
            if step.action != Action.collect:
                raise InvalidInput("not_reviewable")
            await self.rules.require_reviewer(s, member_id, step)
            result = []
            held = await self._held(s)
            for a in await self.reads.assignments(s, rs):
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
                staffed = (
                    bool(await self.reads.assignees(s, a))
                    if a.member_id is not None
                    else (a.role, a.unit_id) in held
                )
                result.append(
                    UnitDelivery(
                        assignment_id=a.id or 0,
                        unit_id=a.unit_id or 0,
                        unit_name=await self.reads.unit_name(s, a.unit_id) or "",
                        state=a.state.value,
                        file=pages[0] if pages else None,
                        pages=pages,
                        versions=len(files),
                        has_members=staffed,
                    )
                )
            return run, result

    async def _held(self, s: AsyncSession) -> set[tuple[str, int | None]]:
        """Every (role, unit) an active member holds, and (role, None) for any
        holder of the role: one query, so a view need not ask per assignment."""
        rows = (
            await s.exec(
                select(MemberRole.role, MemberRole.unit_id)
                .join(Member, col(Member.id) == col(MemberRole.member_id))
                .where(col(Member.active).is_(True))
            )
        ).all()
        return {(role, u) for role, unit in rows for u in (unit, None)}

    async def run_status(
        self, run_id: int | None = None, *, include_closed: bool = False
    ) -> list[RunStatus]:
        """Open runs (or one run): each step with actor, state, time used and
        lateness. Six queries however many runs: the runs, their steps,
        their assignments, their meetings, the units, and the staff."""
        now = self.kit.clock.now()
        which = "one" if run_id is not None else "all" if include_closed else "open"
        runs_of, steps_of_runs, assignments_of_runs, meetings_of_runs = _status_reads(which)
        params = {"run_id": run_id} if run_id is not None else {}
        async with self.kit.db.session() as s:
            runs = (await s.exec(runs_of, params=params)).all()
            if not runs:
                return []
            steps_of: dict[int, list[sa.Row[Any]]] = {}
            for rs in await plain_rows(s, steps_of_runs, params):
                steps_of.setdefault(rs.run_id, []).append(rs)
            by_step: dict[int, list[sa.Row[Any]]] = {}
            for a in await plain_rows(s, assignments_of_runs, params):
                by_step.setdefault(a.run_step_id, []).append(a)
            # Each meeting step's latest meeting (by id), for the steps held at it.
            meetings: dict[int, Meeting] = {}
            for held in (await s.exec(meetings_of_runs, params=params)).all():
                meetings[held.run_step_id] = held
            units = {u.id: u.name for u in (await s.exec(_UNITS)).all()}
            staff = await self.reads.staff(s)
            result = []
            for run in runs:
                sop = await self.kit.sop_of(s, run)
                steps = steps_of.get(run.id or 0, [])
                statuses = []
                for rs in steps:
                    step = sop.step(rs.step_key)
                    meeting: Meeting | None = None
                    if step.after_meeting:
                        held_at = latest_opened(steps, step.after_meeting)
                        meeting = meetings.get(held_at.id or 0) if held_at else None
                    spent, behind = self.reads.times(step, rs, now, meeting)
                    pending, holders, unstaffed, without_members = [], [], [], []
                    for a in by_step.get(rs.id or 0, []):
                        unit = units.get(a.unit_id) if a.unit_id else None
                        names = tuple(m.name for m in staff.assignees(a))
                        holders.append(Holder(unit or role_name(sop, a.role), names))
                        if rs.state != StepState.open or a.state not in OWING:
                            continue
                        if names:
                            if step.action == Action.collect:
                                pending.append(unit or "")
                        elif unit:
                            without_members.append(unit)
                        else:
                            unstaffed.append(role_name(sop, a.role))
                    statuses.append(
                        StepStatus(
                            run_step_id=rs.id or 0,
                            number=rs.number,
                            key=rs.step_key,
                            uraian=step.uraian,
                            actors=[role_name(sop, r) for r in step.actors],
                            state=rs.state.value,
                            iteration=rs.iteration,
                            waktu=step.waktu,
                            opened_at=rs.opened_at,
                            due_at=rs.due_at,
                            done_at=rs.done_at,
                            used_minutes=round(spent, 1) if spent is not None else None,
                            late_minutes=round(behind, 1) if behind else None,
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
        with the unit where the step is per unit. Three queries."""
        async with self.kit.db.session() as s:
            rows = (
                await s.exec(
                    assignments_of_open_runs(list(OWING)).order_by(
                        col(Assignment.run_step_id), col(Assignment.unit_id), col(Assignment.id)
                    )
                )
            ).all()
            units = {u.id: u.name for u in (await s.exec(_UNITS)).all()}
            staff = await self.reads.staff(s)
            result: dict[int, list[dict[str, Any]]] = {}
            for a, rs, run in rows:
                sop = await self.kit.sop_of(s, run)
                result.setdefault(rs.id or 0, []).append(
                    {
                        "role_name": role_name(sop, a.role),
                        "unit_name": units.get(a.unit_id) if a.unit_id else None,
                        "names": [m.name for m in staff.assignees(a)],
                        "delegated": a.member_id is not None,
                    }
                )
            return result

    async def events(
        self, run_id: int, *, offset: int = 0, limit: int = 20
    ) -> tuple[list[Event], int]:
        """One page of a run's event log, and how many events it has."""
        async with self.kit.db.session() as s:
            total = (
                await s.exec(select(func.count()).select_from(Event).where(Event.run_id == run_id))
            ).one()
            rows = (
                await s.exec(
                    select(Event)
                    .where(Event.run_id == run_id)
                    .order_by(col(Event.seq))
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
            return list(rows), int(total)

    async def outcome_labels(self, run_id: int) -> dict[str, str]:
        """The run's SOP labels of decision outcomes ("step:outcome" -> label)."""
        async with self.kit.db.session() as s:
            run = await s.get(Run, run_id)
            if run is None:
                raise NotFound("run")
            return (await self.kit.sop_of(s, run)).outcome_labels()

    async def runs(self, *, open_only: bool = True) -> Sequence[Run]:
        async with self.kit.db.session() as s:
            query = select(Run).order_by(col(Run.id).desc())
            if open_only:
                query = query.where(Run.state == RunState.open)
            return (await s.exec(query)).all()

    async def pages(self, file_id: int) -> list[StoredFile]:
        """The pages of the delivery a file belongs to (itself alone when it
        is no album), so a review can say it covered all of them."""
        async with self.kit.db.session() as s:
            return await self.reads.album_pages(s, await self._file(s, file_id))

    async def file(self, file_id: int) -> StoredFile:
        async with self.kit.db.session() as s:
            return await self._file(s, file_id)

    async def _file(self, s: AsyncSession, file_id: int) -> StoredFile:
        stored = await s.get(StoredFile, file_id)
        if stored is None:
            raise NotFound("file")
        return stored
