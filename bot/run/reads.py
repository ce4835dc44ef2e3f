"""Reads inside a caller's session: who holds a role, who owes an
assignment, which iteration of a step is the latest, a step's times.

Nothing here changes state (locking a run is the one exception, and it
only reads with FOR UPDATE); commands and queries both build on these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Row, bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from bot.db import plain_rows, table
from bot.errors import NotEnrolled, NotFound, RunClosed
from bot.models import (
    Assignment,
    AssignmentState,
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
from bot.run.drafts import DRAFT
from bot.run.kit import RunKit
from bot.sop import Action, Sop, Step
from bot.views import OWING, iso

# A collection's units in these states need nothing more from anyone.
SETTLED_UNIT = (AssignmentState.accepted, AssignmentState.closed)

# What every rule reads, built once: building a statement costs SQLAlchemy
# about as much as running it (see ARCHITECTURE, "Statements built once").
_MEMBER_ROLES = (
    select(Member, MemberRole)
    .join(MemberRole, col(MemberRole.member_id) == col(Member.id), isouter=True)
    .where(col(Member.id) == bindparam("member_id"))
    .order_by(col(MemberRole.id))
)
_STEP_AND_RUN = (
    select(RunStep, Run)
    .join(Run, col(Run.id) == col(RunStep.run_id))
    .where(col(RunStep.id) == bindparam("run_step_id"))
)
_ASSIGNMENTS = (
    select(Assignment)
    .where(col(Assignment.run_step_id) == bindparam("run_step_id"))
    .order_by(col(Assignment.unit_id), col(Assignment.id))
)
_ROLES = select(MemberRole).where(col(MemberRole.member_id) == bindparam("member_id"))
# Every active member with their roles: /status and the morning digest read it.
_M, _R = table(Member), table(MemberRole)
_STAFF = (
    sa_select(_M.c.id, _M.c.name, _R.c.role, _R.c.unit_id)
    .select_from(_M.outerjoin(_R, _R.c.member_id == _M.c.id))
    .where(_M.c.active.is_(True))
    .order_by(_M.c.id, _R.c.id)
)


class StepTimes(Protocol):
    """What a step's times are reckoned from: a RunStep, or a row of its
    columns (/status reads every step of every open run as plain rows)."""

    @property
    def state(self) -> StepState: ...
    @property
    def opened_at(self) -> datetime | None: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def done_at(self) -> datetime | None: ...


class StepIteration(Protocol):
    """Which iteration of which step: a RunStep, or a row of its columns."""

    @property
    def step_key(self) -> str: ...
    @property
    def state(self) -> StepState: ...
    @property
    def iteration(self) -> int: ...


class Owed(Protocol):
    """Whom an assignment is owed by: an Assignment, or a row of its columns."""

    @property
    def member_id(self) -> int | None: ...
    @property
    def role(self) -> str: ...
    @property
    def unit_id(self) -> int | None: ...


@dataclass(frozen=True)
class Person:
    """An active member as a view of many steps names them."""

    id: int
    name: str


Iteration = TypeVar("Iteration", bound=StepIteration)


def assignments_of_open_runs(
    states: list[AssignmentState], *, open_steps: bool = True
) -> Select[Assignment, RunStep, Run]:
    """Assignments in these states, with their step and run, of runs still
    open (and, unless told otherwise, of steps still open)."""
    query = (
        select(Assignment, RunStep, Run)
        .join(RunStep, col(RunStep.id) == col(Assignment.run_step_id))
        .join(Run, col(Run.id) == col(RunStep.run_id))
        .where(Run.state == RunState.open, col(Assignment.state).in_(states))
    )
    return query.where(RunStep.state == StepState.open) if open_steps else query


def validated(sop: Sop, collect_key: str, open_keys: set[str]) -> bool:
    """Is a validation of this collection among a run's open steps? Then the
    closed collection is still live (Reads.collection_live, for a caller
    that read the open steps of many runs at once)."""
    return any(
        step.action == Action.validate and step.collection == collect_key and step.key in open_keys
        for step in sop.steps
    )


def latest_opened(steps: Sequence[Iteration], key: str) -> Iteration | None:
    """Among a run's steps, the newest iteration of `key` that has opened
    (Reads.latest_step, over steps already read)."""
    found = [rs for rs in steps if rs.step_key == key and rs.state != StepState.waiting]
    return max(found, key=lambda rs: rs.iteration) if found else None


def role_name(sop: Sop, role: str) -> str:
    """The role as the SOP names it ("Kasubbag Perencanaan / Perencana")."""
    return sop.roles[role].name if role in sop.roles else role


def step_context(run: Run, sop: Sop, step: Step, rs: RunStep) -> dict[str, Any]:
    """What every message about a step may say, from the run's own SOP."""
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
        "actor_roles": ", ".join(role_name(sop, r) for r in step.actors),
        "reviewer_name": role_name(sop, step.reviewer) if step.reviewer else None,
        "iteration": rs.iteration,
        "opened_at": iso(rs.opened_at),
        "due_at": iso(rs.due_at),
    }


class Staff:
    """The active members and the roles they hold, read in one query (plain
    rows: a member's id and name are all a view shows): who holds a role,
    who owes an assignment. A view of many steps (the status of every open
    run, the digest) asks this once instead of once per assignment."""

    def __init__(self, staff: Sequence[Row[Any]]) -> None:
        self.members: dict[int, Person] = {}
        # By role, then unit: /status asks for every assignment of every open
        # run, and a scan of all roles each time grew with the office.
        self._by_role: dict[str, list[tuple[int | None, Person]]] = {}
        self._found: dict[tuple[str, int | None], list[Person]] = {}
        for row in staff:  # (id, name, role, unit_id), a row per role held
            member = self.members.get(row.id)
            if member is None:
                member = self.members[row.id] = Person(row.id, row.name)
            if row.role is not None:
                self._by_role.setdefault(row.role, []).append((row.unit_id, member))

    def holders(self, role: str, unit_id: int | None = None) -> list[Person]:
        """Active members holding the role (in the unit, when given), by id."""
        wanted = (role, unit_id)
        if wanted not in self._found:
            found = {
                m.id: m
                for unit, m in self._by_role.get(role, [])
                if unit_id is None or unit == unit_id
            }
            self._found[wanted] = [found[k] for k in sorted(found)]
        return list(self._found[wanted])

    def assignees(self, a: Owed) -> list[Person]:
        """Who owes an assignment now: its delegate, else its role's holders."""
        if a.member_id is not None:
            member = self.members.get(a.member_id)
            return [member] if member is not None else []
        return self.holders(a.role, a.unit_id)


class Reads:
    """Session-level reads shared by the commands, the rules and the queries."""

    def __init__(self, kit: RunKit) -> None:
        self.kit = kit

    # ----------------------------------------------------------------- people

    async def member(self, s: AsyncSession, member_id: int) -> Member:
        member = await s.get(Member, member_id)
        if member is None or not member.active:
            raise NotEnrolled()
        return member

    async def member_roles(
        self, s: AsyncSession, member_id: int
    ) -> tuple[Member, list[MemberRole]]:
        """The active member and their role rows, in one query (an outer
        join): what every rule asks first."""
        rows = (await s.exec(_MEMBER_ROLES, params={"member_id": member_id})).all()
        if not rows or not rows[0][0].active:
            raise NotEnrolled()
        return rows[0][0], [r for _, r in rows if r is not None]

    async def roles(self, s: AsyncSession, member_id: int) -> set[str]:
        return {r.role for r in await self.role_rows(s, member_id)}

    async def role_rows(self, s: AsyncSession, member_id: int) -> list[MemberRole]:
        return list((await s.exec(_ROLES, params={"member_id": member_id})).all())

    async def staff(self, s: AsyncSession) -> Staff:
        """Every active member with their roles (see Staff), in one query."""
        return Staff(await plain_rows(s, _STAFF))

    async def holders(self, s: AsyncSession, role: str, unit_id: int | None = None) -> list[Member]:
        """Active members holding the role (in the unit, when given)."""
        query = (
            select(Member)
            .join(MemberRole, col(MemberRole.member_id) == col(Member.id))
            .where(MemberRole.role == role, col(Member.active).is_(True))
        )
        if unit_id is not None:
            query = query.where(MemberRole.unit_id == unit_id)
        members = (await s.exec(query.order_by(col(Member.id)))).all()
        return list({m.id: m for m in members}.values())

    async def assignees(self, s: AsyncSession, a: Assignment) -> list[Member]:
        """Who owes an assignment now: its delegate, else its role's holders."""
        if a.member_id is not None:
            member = await s.get(Member, a.member_id)
            return [member] if member and member.active else []
        return await self.holders(s, a.role, a.unit_id)

    async def reviewer_on_duty(self, s: AsyncSession, role: str, a: Assignment) -> list[Member]:
        """Who is sent a unit's delivery to review: one of the role's holders,
        the units shared out in turn (the first unit to the first holder, the
        second to the second, ...), so two planners do not both get every
        file; a unit's later versions go to the same one. Every holder may
        still review any unit's file (`Rules.review_access`, "Lihat berkas
        unit"); this only decides whose phone is told."""
        holders = await self.holders(s, role)
        if len(holders) < 2:
            return holders
        before = (
            await s.exec(
                select(func.count())
                .select_from(Assignment)
                .where(
                    Assignment.run_step_id == a.run_step_id,
                    col(Assignment.unit_id) < (a.unit_id or 0),
                )
            )
        ).one()
        return [holders[before % len(holders)]]

    async def name_of(self, s: AsyncSession, member_id: int | None) -> str | None:
        member = await s.get(Member, member_id) if member_id else None
        return member.name if member else None

    async def unit_name(self, s: AsyncSession, unit_id: int | None) -> str | None:
        if unit_id is None:
            return None
        unit = await s.get(Unit, unit_id)
        return unit.name if unit else None

    # ------------------------------------------------------------- runs, steps

    async def lock_run(self, s: AsyncSession, run_id: int) -> Run:
        """The run, locked for this transaction (PostgreSQL), and still open:
        every command on a run takes this lock first, so two never interleave."""
        run = (await s.exec(select(Run).where(Run.id == run_id).with_for_update())).first()
        if run is None:
            raise NotFound("run")
        if run.state != RunState.open:
            raise RunClosed(run_title=run.title, state=run.state.value)
        return run

    async def open_run(self, s: AsyncSession, run_id: int, *, lock: bool) -> Run:
        """The run, still open; locked when a command will change it."""
        if lock:
            return await self.lock_run(s, run_id)
        run = await s.get(Run, run_id)
        if run is None:
            raise NotFound("run")
        if run.state != RunState.open:
            raise RunClosed(run_title=run.title, state=run.state.value)
        return run

    async def run_step(
        self, s: AsyncSession, run_step_id: int, *, lock: bool = True
    ) -> tuple[Run, RunStep]:
        """A step and its open run; with `lock`, read again under the run's lock."""
        if not lock:  # both in one query
            found = (await s.exec(_STEP_AND_RUN, params={"run_step_id": run_step_id})).first()
            if found is None:
                raise NotFound("step")
            step, run = found
            if run.state != RunState.open:
                raise RunClosed(run_title=run.title, state=run.state.value)
            return run, step
        rs = await s.get(RunStep, run_step_id)
        if rs is None:
            raise NotFound("step")
        run = await self.open_run(s, rs.run_id, lock=lock)
        await s.refresh(rs)
        return run, rs

    async def latest_step(self, s: AsyncSession, run: Run, key: str) -> RunStep | None:
        """The newest iteration of a step that has opened."""
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

    async def meeting_of(self, s: AsyncSession, run: Run, step: Step) -> Meeting | None:
        """The meeting a step is held at (its `after_meeting`), once it is set."""
        if not step.after_meeting:
            return None
        meeting_rs = await self.latest_step(s, run, step.after_meeting)
        if meeting_rs is None:
            return None
        return (
            await s.exec(
                select(Meeting)
                .where(Meeting.run_step_id == meeting_rs.id)
                .order_by(col(Meeting.id).desc())
            )
        ).first()

    async def assignments(self, s: AsyncSession, rs: RunStep) -> list[Assignment]:
        return list((await s.exec(_ASSIGNMENTS, params={"run_step_id": rs.id})).all())

    async def step_times(
        self, s: AsyncSession, run: Run, step: Step, rs: RunStep, now: datetime
    ) -> tuple[float | None, float]:
        """Working minutes a step used and how late it was (0 when not),
        the one reckoning behind /status, the monev report and the closing
        summary. A step held at a meeting counts from the meeting's start
        (or its own opening, if later): the wait for the meeting is not time
        spent on it, just as its due time counts from the meeting."""
        meeting = await self.meeting_of(s, run, step) if rs.opened_at is not None else None
        return self.times(step, rs, now, meeting)

    def times(
        self, step: Step, rs: StepTimes, now: datetime, meeting: Meeting | None
    ) -> tuple[float | None, float]:
        """step_times, given the step's meeting (None when it has none):
        for a caller that read the meetings of many runs at once."""
        calendar = self.kit.calendar
        end = rs.done_at or (now if rs.state == StepState.open else None)
        start = rs.opened_at
        if step.after_meeting and start and meeting and meeting.starts_at > start:
            start = meeting.starts_at
        used = calendar.working_minutes_between(start, end) if start and end else None
        late = 0.0
        if rs.due_at and end and end > rs.due_at:
            late = calendar.working_minutes_between(rs.due_at, end)
        return used, late

    async def involved(self, s: AsyncSession, run: Run, *, units: bool = True) -> list[int]:
        """Everyone who acted in or was assigned to the run; with
        `units=False`, not those whose only part was their unit's delivery."""
        ids: set[int] = set()
        if run.started_by:
            ids.add(run.started_by)
        steps = (await s.exec(select(RunStep).where(RunStep.run_id == run.id))).all()
        for rs in steps:
            if rs.done_by:
                ids.add(rs.done_by)
            for a in await self.assignments(s, rs):
                if units or a.unit_id is None:
                    ids.update(m.id for m in await self.assignees(s, a) if m.id)
        return sorted(ids)

    # -------------------------------------------------------------------- files

    async def latest_files(self, s: AsyncSession, run: Run, step_key: str) -> list[StoredFile]:
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
                        StoredFile.kind != DRAFT,  # a draft counts once chosen (a copy)
                    )
                    .order_by(col(StoredFile.id))
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

    async def attachments(self, s: AsyncSession, run: Run, step: Step) -> list[StoredFile]:
        """The documents a step's task carries (its `attach_from`)."""
        for key in step.attach_from:
            files = await self.latest_files(s, run, key)
            if files:
                return files
        return []

    async def album_pages(self, s: AsyncSession, stored: StoredFile) -> list[StoredFile]:
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

    async def file_count(
        self, s: AsyncSession, *, run_id: int | None = None, rs_id: int | None = None
    ) -> int:
        query = select(func.count()).select_from(StoredFile).where(StoredFile.kind != DRAFT)
        if run_id is not None:
            query = query.where(StoredFile.run_id == run_id)
        if rs_id is not None:
            query = query.where(StoredFile.run_step_id == rs_id)
        return int((await s.exec(query)).one())

    # --------------------------------------------------------------- collection

    async def validation_for(
        self, s: AsyncSession, run: Run, sop: Sop, collect_key: str
    ) -> RunStep | None:
        """The open validation of a collection, if any: while it runs, the
        closed collection still takes new versions and reviews."""
        for step in sop.steps:
            if step.action == Action.validate and step.collection == collect_key:
                v = await self.latest_step(s, run, step.key)
                if v is not None and v.state == StepState.open:
                    return v
        return None

    async def collection_live(self, s: AsyncSession, run: Run, sop: Sop, rs: RunStep) -> bool:
        """A closed collection still takes re-uploads while its validation is open."""
        return await self.validation_for(s, run, sop, rs.step_key) is not None

    async def collection_step(self, s: AsyncSession, run: Run, step: Step, rs: RunStep) -> RunStep:
        """The collection a step works on: itself, or a validation's collection."""
        if step.action == Action.validate:
            return await self.latest_step(s, run, step.collection or "") or rs
        return rs

    async def closable(self, s: AsyncSession, step: Step, target: RunStep) -> list[Assignment]:
        """The units a collection still waits for: at the collection, those
        that have not delivered; at its validation, those not yet accepted."""
        assignments = await self.assignments(s, target)
        if step.action == Action.collect:
            return [a for a in assignments if a.state in OWING]
        return [a for a in assignments if a.state not in SETTLED_UNIT]

    async def all_delivered(self, s: AsyncSession, rs: RunStep) -> bool:
        return all(a.state not in OWING for a in await self.assignments(s, rs))

    async def collection_settled(self, s: AsyncSession, collect_rs: RunStep) -> bool:
        return all(a.state in SETTLED_UNIT for a in await self.assignments(s, collect_rs))
