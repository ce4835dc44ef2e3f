"""Who may act on what, and when: the one place for every permission.

Each rule is a function over the caller's session. The commands call them
inside their transaction (locking the run); the pre-checks below call the
same functions in a read-only session before a handler asks a person for
something (a note, a file), so the question and the command never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import (
    AlreadyDone,
    AmbiguousUnit,
    Delegated,
    FileRejected,
    InvalidInput,
    NotAllowed,
    NoteRequired,
    NotFound,
    StepNotOpen,
    WrongUnit,
)
from bot.models import (
    Assignment,
    AssignmentState,
    Member,
    MemberRole,
    ReviewState,
    Run,
    RunStep,
    StepState,
    StoredFile,
)
from bot.run.actions import task_view
from bot.run.kit import RunKit
from bot.run.reads import SETTLED_UNIT, Reads
from bot.sop import Action, Sop, Step
from bot.storage import extension_of
from bot.views import ADMIN, MAX_NOTE, OWING, Task, iso


class Purpose(StrEnum):
    """What a person wants to do with a step."""

    act = "act"  # finish it, decide, set the meeting
    upload = "upload"  # send a file to it
    close = "close"  # close units of a collection that cannot deliver


@dataclass(frozen=True)
class StepAccess:
    """What a rule found while allowing an act: a command goes on with it."""

    member: Member
    run: Run
    rs: RunStep
    sop: Sop
    step: Step
    # The member's assignment (None when closing units: the reviewer's act).
    assignment: Assignment | None


@dataclass(frozen=True)
class ReviewAccess:
    member: Member
    run: Run
    rs: RunStep
    sop: Sop
    step: Step
    file: StoredFile
    validation: RunStep | None


@dataclass(frozen=True)
class DelegationAccess:
    member: Member
    run: Run
    rs: RunStep
    sop: Sop
    step: Step
    assignment: Assignment


def holds(roles: Iterable[MemberRole], a: Assignment) -> bool:
    """Do these role rows (one member's) cover the assignment's role, and
    its unit when it has one? The one test behind may_act and the query
    of a member's tasks."""
    return any(r.role == a.role and (a.unit_id is None or r.unit_id == a.unit_id) for r in roles)


def require_open(rs: RunStep) -> None:
    if rs.state in (StepState.done, StepState.returned, StepState.skipped):
        raise AlreadyDone()
    if rs.state != StepState.open:
        raise StepNotOpen()


def require_one_of(held: Iterable[str], allowed: Iterable[str]) -> None:
    """The one role test: refuse unless the member holds one of `allowed`,
    naming the roles that may (also for bot/members.py's admin commands)."""
    wanted = [r for r in allowed if r]
    if not set(held) & set(wanted):
        raise NotAllowed(roles=wanted)


def check_note(note: str | None, rule: str, prompt: str | None = None) -> str | None:
    """The note as kept; a missing required one is refused with what to ask
    for (the SOP's `note_prompt`, if any)."""
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise InvalidInput("note_too_long", limit=MAX_NOTE)
    if rule == "required" and not note:
        raise NoteRequired(prompt=prompt)
    return note if rule != "none" else None


class Rules:
    """Permissions over runs, steps, files and assignments."""

    def __init__(self, kit: RunKit, reads: Reads) -> None:
        self.kit = kit
        self.reads = reads

    # ------------------------------------------------------------------ files

    @property
    def max_file_bytes(self) -> int | None:
        return self.kit.max_file_bytes

    def check_file_size(self, size: int) -> str:
        """Why a file of this size is refused ('' when it is not)."""
        if size <= 0:
            return "empty"
        if self.kit.max_file_bytes is not None and size > self.kit.max_file_bytes:
            return "too_big"
        return ""

    def check_file(self, step: Step, name: str, kind: str, size: int) -> None:
        """Refuse a file this step cannot take: checked before downloading,
        and again before storing."""
        reason = self.check_file_size(size)
        ext = "jpg" if kind == "photo" else extension_of(name)
        if not reason and ext not in step.accept:
            reason = "type"
        if reason:
            limit = (self.kit.max_file_bytes or 0) // (1024 * 1024)
            raise FileRejected(reason, accept=step.accept, limit_mb=limit)

    # ----------------------------------------------------------- assignments

    async def may_act(
        self,
        s: AsyncSession,
        member_id: int,
        a: Assignment,
        roles: Sequence[MemberRole] | None = None,
    ) -> bool:
        """Does the assignment fall to this member now: delegated to them, or
        not delegated and theirs by role (and unit)? `roles`: the member's
        role rows, when the caller has read them already."""
        if a.member_id is not None:
            return a.member_id == member_id
        return await self.could_hold(s, member_id, a, roles)

    async def could_hold(
        self,
        s: AsyncSession,
        member_id: int,
        a: Assignment,
        roles: Sequence[MemberRole] | None = None,
    ) -> bool:
        """Does the member hold the assignment's role (and unit), whoever
        holds the assignment now? Also who a task may be handed to."""
        if roles is None:
            roles = await self.reads.role_rows(s, member_id)
        return holds(roles, a)

    async def refuse_if_delegated(
        self,
        s: AsyncSession,
        member_id: int,
        assignments: Sequence[Assignment],
        roles: Sequence[MemberRole] | None = None,
    ) -> None:
        """A task handed to someone else is refused by saying so (to whom, by
        whom, when), not as if the member never had the role."""
        for a in assignments:
            if a.member_id is None or a.member_id == member_id:
                continue
            if a.delegated_by != member_id and not await self.could_hold(s, member_id, a, roles):
                continue
            raise Delegated(
                to=await self.reads.name_of(s, a.member_id) or "",
                by=await self.reads.name_of(s, a.delegated_by) or "",
                at=iso(a.delegated_at),
                by_you=a.delegated_by == member_id,
            )

    async def closed_refusal(self, s: AsyncSession, a: Assignment) -> StepNotOpen:
        """Why a closed unit may no longer act: who closed it and why."""
        return StepNotOpen(
            "unit_closed",
            unit=await self.reads.unit_name(s, a.unit_id),
            by=await self.reads.name_of(s, a.closed_by),
            reason=a.close_reason,
        )

    async def assignment_for(
        self,
        s: AsyncSession,
        member_id: int,
        rs: RunStep,
        unit_id: int | None = None,
        roles: Sequence[MemberRole] | None = None,
    ) -> Assignment:
        """The member's assignment on this step, or the reason they have none."""
        assignments = await self.reads.assignments(s, rs)
        assignments.sort(key=lambda a: a.id or 0)
        if roles is None:
            roles = await self.reads.role_rows(s, member_id)
        mine = [a for a in assignments if await self.may_act(s, member_id, a, roles)]
        if unit_id is not None:
            mine = [a for a in mine if a.unit_id == unit_id]
        if not mine:
            await self.refuse_if_delegated(s, member_id, assignments, roles)
            held = {r.role for r in roles}
            if any(a.role in held and a.unit_id is not None for a in assignments):
                raise WrongUnit()
            raise NotAllowed(roles=sorted({a.role for a in assignments}))
        owing = [a for a in mine if a.state not in SETTLED_UNIT]
        if len({a.unit_id for a in owing}) > 1:
            units = [(a.unit_id, await self.reads.unit_name(s, a.unit_id)) for a in owing]
            run = await s.get(Run, rs.run_id)
            raise AmbiguousUnit(
                units=units,
                run_step_id=rs.id,
                number=rs.number,
                run_title=run.title if run else "",
            )
        return (owing or mine)[0]

    # ------------------------------------------------------------------ steps

    async def step_access(
        self,
        s: AsyncSession,
        member_id: int,
        run_step_id: int,
        purpose: Purpose,
        *,
        unit_id: int | None = None,
        lock: bool = True,
    ) -> StepAccess:
        """May this member do `purpose` on the step now? Raises the refusal
        a person is shown; returns what was found for the command."""
        member, roles = await self.reads.member_roles(s, member_id)
        run, rs = await self.reads.run_step(s, run_step_id, lock=lock)
        sop = await self.kit.sop_of(s, run)
        step = sop.step(rs.step_key)
        if purpose == Purpose.close:
            if step.action == Action.collect:
                allowed = {step.reviewer} if step.reviewer else set()
            elif step.action == Action.validate:
                allowed = set(step.actors)
            else:
                raise InvalidInput("not_closable")
            require_one_of({r.role for r in roles}, sorted(r for r in allowed if r))
            require_open(rs)
            return StepAccess(member, run, rs, sop, step, None)
        if step.action == Action.collect:
            # A closed collection still takes new versions while it is validated.
            if rs.state != StepState.open and not await self.reads.collection_live(s, run, sop, rs):
                require_open(rs)
        else:
            require_open(rs)
            if purpose == Purpose.upload and step.files == "none":
                raise InvalidInput("no_files_here")
        a = await self.assignment_for(s, member_id, rs, unit_id, roles)
        if a.state == AssignmentState.accepted:
            raise AlreadyDone("accepted")
        if a.state == AssignmentState.closed and step.action == Action.collect:
            raise await self.closed_refusal(s, a)
        if a.state in (AssignmentState.closed, AssignmentState.done):
            raise AlreadyDone()
        return StepAccess(member, run, rs, sop, step, a)

    async def review_access(
        self, s: AsyncSession, member_id: int, file_id: int, *, lock: bool = True
    ) -> ReviewAccess:
        """May this member accept or return this unit's file now?"""
        member = await self.reads.member(s, member_id)
        stored = await s.get(StoredFile, file_id)
        if stored is None:
            raise NotFound("file")
        run, rs = await self.reads.run_step(s, stored.run_step_id, lock=lock)
        if lock:
            await s.refresh(stored)
        sop = await self.kit.sop_of(s, run)
        step = sop.step(rs.step_key)
        if step.action != Action.collect or not step.reviewer:
            raise InvalidInput("not_reviewable")
        require_one_of(await self.reads.roles(s, member_id), [step.reviewer])
        validation = await self.reads.validation_for(s, run, sop, step.key)
        if rs.state != StepState.open and validation is None:
            raise (
                AlreadyDone() if rs.state in (StepState.done, StepState.returned) else StepNotOpen()
            )
        await self.require_unreviewed(s, stored)
        return ReviewAccess(member, run, rs, sop, step, stored, validation)

    async def require_unreviewed(self, s: AsyncSession, stored: StoredFile) -> None:
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
                unit=await self.reads.unit_name(s, stored.unit_id),
            )
        raise AlreadyDone(stored.review_state.value)

    async def delegation_access(
        self, s: AsyncSession, member_id: int, assignment_id: int, *, lock: bool = True
    ) -> DelegationAccess:
        """May this member hand this assignment to a colleague? Its holder
        may, and an admin; only while it is still owed."""
        member = await self.reads.member(s, member_id)
        a = await s.get(Assignment, assignment_id)
        if a is None:
            raise NotFound("assignment")
        run, rs = await self.reads.run_step(s, a.run_step_id, lock=lock)
        if lock:
            await s.refresh(a)
        if rs.state != StepState.open or a.state not in OWING:
            raise AlreadyDone()
        if not (
            ADMIN in await self.reads.roles(s, member_id) or await self.may_act(s, member_id, a)
        ):
            await self.refuse_if_delegated(s, member_id, [a])
            raise NotAllowed(roles=[a.role, ADMIN])
        sop = await self.kit.sop_of(s, run)
        return DelegationAccess(member, run, rs, sop, sop.step(rs.step_key), a)

    # ------------------------------------------------------------------- runs

    async def require_starter(self, s: AsyncSession, member_id: int, sop: Sop) -> set[str]:
        """Starting or stopping a run is for step 1's actors and admins;
        returns the member's roles."""
        await self.reads.member(s, member_id)
        roles = await self.reads.roles(s, member_id)
        require_one_of(roles, [*sop.first.actors, ADMIN])
        return roles

    async def require_admin(self, s: AsyncSession, member_id: int) -> Member:
        member = await self.reads.member(s, member_id)
        require_one_of(await self.reads.roles(s, member_id), [ADMIN])
        return member

    async def require_reviewer(self, s: AsyncSession, member_id: int, step: Step) -> None:
        """A collection's files are shown to its reviewers, and to admins."""
        require_one_of(await self.reads.roles(s, member_id), [step.reviewer or "", ADMIN])

    async def require_invitee(self, s: AsyncSession, member_id: int, step: Step) -> None:
        require_one_of(await self.reads.roles(s, member_id), step.invitees)

    # ------------------------------------------------------------ pre-checks

    async def authorize(
        self,
        actor_id: int,
        run_step_id: int,
        *,
        unit_id: int | None = None,
        purpose: Purpose = Purpose.act,
    ) -> Task:
        """Would this member be allowed to act on the step now? The same
        rule the command applies, asked before a prompt or a download so a
        person is not asked for something they cannot give."""
        async with self.kit.db.session() as s:
            got = await self.step_access(
                s, actor_id, run_step_id, purpose, unit_id=unit_id, lock=False
            )
            a = got.assignment
            unit = await self.reads.unit_name(s, a.unit_id) if a else None
            return task_view(got.run, got.step, got.rs, a, unit)

    async def check_upload(
        self,
        actor_id: int,
        run_step_id: int,
        *,
        name: str,
        kind: str,
        size: int | None,
        unit_id: int | None = None,
    ) -> Task:
        """Refuse a file before it is downloaded (size, type, who, when)."""
        async with self.kit.db.session() as s:
            got = await self.step_access(
                s, actor_id, run_step_id, Purpose.upload, unit_id=unit_id, lock=False
            )
            a = got.assignment
            unit = await self.reads.unit_name(s, a.unit_id) if a else None
        # An unknown size (Telegram may omit it) is checked after download.
        self.check_file(got.step, name, kind, 1 if size is None else size)
        return task_view(got.run, got.step, got.rs, a, unit)

    async def check_review(self, actor_id: int, file_id: int) -> StoredFile:
        """May this member review this file now (before asking for a note)?"""
        async with self.kit.db.session() as s:
            return (await self.review_access(s, actor_id, file_id, lock=False)).file

    async def require_role(self, actor_id: int, roles: Sequence[str]) -> None:
        """Refuse unless the member holds one of `roles` (admins always may)."""
        async with self.kit.db.session() as s:
            await self.reads.member(s, actor_id)
            held = await self.reads.roles(s, actor_id)
        require_one_of(held, [*roles, ADMIN])
