"""The messages a change to a run implies: tasks, settled buttons, warnings.

Each is queued through the outbox's one writer (`bot.outbox.queue`), in the
command's own transaction, under a key that makes it go out once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import (
    Assignment,
    AssignmentState,
    Member,
    Notification,
    OutboxState,
    Run,
    RunStep,
    StepState,
    StoredFile,
)
from bot.outbox import drop, queue
from bot.run.actions import follow_actions, review_actions, step_actions
from bot.run.kit import RunKit
from bot.run.reads import Reads, role_name, step_context
from bot.sop import Action, Sop, Step
from bot.views import ADMIN, iso

# Messages with buttons for a step: edited once their step (or assignment)
# is settled, so nobody keeps buttons that no longer work.
# A /tugas line ("task_line") is kept as a sent row by its handler for this.
SETTLED_TEMPLATES = ("task", "reminder", "collection_started", "task_line", "file_returned")
# Every message that may carry a button of a run: none keeps one once the
# run has ended.
RUN_BUTTON_TEMPLATES = (*SETTLED_TEMPLATES, "meeting_invitation", "file_for_review")
# Messages that carry a document to its reader.
FILE_CARRIERS = ("task", "attachment", "distributed")
# An assignment in one of these states owes nothing more: its buttons go.
FINAL = (AssignmentState.done, AssignmentState.closed, AssignmentState.accepted)


class TaskReason(StrEnum):
    """Why a task message goes to a person (its heading says so)."""

    opened = "opened"  # the step opened
    joined = "joined"  # the person joined after it opened
    delegated = "delegated"  # a colleague handed it over


class Settled(StrEnum):
    """What happened to a message's buttons, for the line that replaces them."""

    done = "done"
    decided = "decided"
    closed = "closed"
    auto = "auto"  # the bot finished the step (all delivered, all accepted)
    accepted = "accepted"
    returned = "returned"
    superseded = "superseded"
    delegated = "delegated"
    cancelled = "cancelled"
    run_done = "run_done"  # the run ended: whatever was still open goes


class Messages:
    def __init__(self, kit: RunKit, reads: Reads) -> None:
        self.kit = kit
        self.reads = reads

    async def notify(
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
        edits_id: int | None = None,
    ) -> Notification | None:
        """Queue a message about a run (None when its key was queued before)."""
        return await queue(
            s,
            key=key,
            member_id=member_id,
            template=template,
            context=context,
            now=self.kit.clock.now(),
            run_id=run.id if run else None,
            run_step_id=run_step_id,
            assignment_id=assignment_id,
            file_id=file_id,
            edits_id=edits_id,
        )

    async def mark(self, s: AsyncSession) -> int:
        """Where the outbox stands now, for `tasked_since`."""
        last = (await s.exec(select(func.max(Notification.id)))).one()
        return int(last or 0)

    async def tasked_since(self, s: AsyncSession, run: Run, mark: int) -> set[int]:
        """Who got a task of this run queued after `mark`: in the caller's
        transaction, as the run is locked, no other command adds any."""
        rows = (
            await s.exec(
                select(Notification.member_id).where(
                    col(Notification.id) > mark,
                    Notification.run_id == run.id,
                    Notification.template == "task",
                )
            )
        ).all()
        return set(rows)

    # ------------------------------------------------------------------ tasks

    async def send_task(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        step: Step,
        rs: RunStep,
        a: Assignment,
        member: Member,
        *,
        reason: TaskReason = TaskReason.opened,
        roles: list[str] | None = None,
    ) -> None:
        """A person's task message for a step, with the document it carries
        as the same message (the task is its caption). A document this
        person already received (the form sent at step 3, the compiled
        document seen at step 10) is named, not sent again; several new
        ones follow the task one by one."""
        if step.after_meeting and await self._fold_into_invitation(
            s, run, sop, step, rs, a, member, roles or [a.role]
        ):
            return
        files = await self.reads.attachments(s, run, step)
        new = [f for f in files if not await self._received(s, member, f)]
        context = step_context(run, sop, step, rs)
        context.update(
            roles=[role_name(sop, r) for r in roles or [a.role] if r in sop.roles],
            assignment_id=a.id,
            unit_name=await self.reads.unit_name(s, a.unit_id),
            notes=await self.notes_since(s, run, sop, rs),
            actions=[t.as_dict() for t in step_actions(step, rs, a)],
            reason=reason.value,
            attached=[{"name": f.original_name, "version": f.version} for f in new],
            received=[
                {"name": f.original_name, "version": f.version} for f in files if f not in new
            ],
        )
        # A delegation keeps the key it always had, so rows queued before
        # this version are still recognised.
        tail = f"delegated{a.id}-{member.id}" if reason == TaskReason.delegated else reason.value
        key = f"task:{rs.id}:{a.id}:{member.id}:{tail}"
        row = await self.notify(
            s,
            member.id or 0,
            "task",
            key,
            context,
            run=run,
            run_step_id=rs.id,
            assignment_id=a.id,
            file_id=new[0].id if len(new) == 1 else None,
        )
        if row is None or len(new) < 2:
            return
        for f in new:
            await self.notify(
                s,
                member.id or 0,
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

    async def _fold_into_invitation(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        step: Step,
        rs: RunStep,
        a: Assignment,
        member: Member,
        roles: list[str],
    ) -> bool:
        """A step held at a meeting opens as its invitation goes out: whoever
        is invited gets one message, the invitation carrying the task and
        its button (Selesai, after the meeting). Only while the invitation
        is still unsent, i.e. in the transaction that set the meeting."""
        meeting_rs = await self.reads.latest_step(s, run, step.after_meeting or "")
        if meeting_rs is None:
            return False
        invitation = (
            await s.exec(
                select(Notification).where(
                    Notification.run_step_id == meeting_rs.id,
                    Notification.member_id == member.id,
                    Notification.template == "meeting_invitation",
                    Notification.state == OutboxState.pending,
                    col(Notification.sending_since).is_(None),
                )
            )
        ).first()
        if invitation is None:
            return False
        task = step_context(run, sop, step, rs)
        task["unit_name"] = await self.reads.unit_name(s, a.unit_id)
        task["roles"] = [role_name(sop, r) for r in roles if r in sop.roles]
        invitation.context = {
            **invitation.context,
            "task": task,
            "actions": [
                *invitation.context.get("actions", []),
                *(t.as_dict() for t in step_actions(step, rs, a)),
            ],
        }
        s.add(invitation)
        return True

    async def _received(self, s: AsyncSession, member: Member, f: StoredFile) -> bool:
        """Was this file already sent to this person (with a task, or shared)?"""
        row = (
            await s.exec(
                select(Notification.id).where(
                    Notification.member_id == member.id,
                    Notification.file_id == f.id,
                    col(Notification.template).in_(FILE_CARRIERS),
                    col(Notification.state).in_([OutboxState.pending, OutboxState.sent]),
                )
            )
        ).first()
        return row is not None

    async def notes_since(
        self, s: AsyncSession, run: Run, sop: Sop, rs: RunStep
    ) -> list[dict[str, Any]]:
        """Notes left by the steps done since this step last closed (or, the
        first time, the previous step's and the run's latest decision), so
        a correction note reaches the
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
            window = [d for d in done if (d.done_at, d.id or 0) > (cutoff.done_at, cutoff.id or 0)]
            corrections = [i for i, d in enumerate(window) if d.state == StepState.returned]
            if corrections:
                window = window[corrections[-1] :]
        else:
            window = list(done[-1:])
            # The run's latest decision is named too: the approval at step 10
            # reaches whoever acts next at steps 13 and 14 in their task,
            # instead of as a message of its own.
            decided = [d for d in done if d.outcome and sop.step(d.step_key).outcomes]
            if decided and decided[-1] not in window:
                window.insert(0, decided[-1])
        notes = []
        for d in window:
            done_step = sop.step(d.step_key)
            chosen = done_step.outcome(d.outcome or "") if done_step.outcomes else None
            if d.note or chosen is not None:
                notes.append(
                    {
                        "number": d.number,
                        "by": await self.reads.name_of(s, d.done_by) or "",
                        "note": d.note,
                        "outcome": d.outcome,
                        "label": chosen.label if chosen else None,
                        "role": role_name(sop, done_step.actors[0]) if chosen else None,
                    }
                )
        return notes

    async def tell_reviewers(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep, units: int
    ) -> None:
        """A collection has opened: its reviewers (the SOP's `reviewer`) get
        the buttons to follow it and to close it, not only through /tugas."""
        context = {
            **step_context(run, sop, step, rs),
            "units": units,
            "unit_label": sop.unit_label,
            "actions": [t.as_dict() for t in follow_actions(rs.id or 0)],
        }
        for m in await self.reads.holders(s, step.reviewer or ""):
            await self.notify(
                s,
                m.id or 0,
                "collection_started",
                f"collecting:{rs.id}:{m.id}",
                context,
                run=run,
                run_step_id=rs.id,
            )

    async def ask_review(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        step: Step,
        rs: RunStep,
        a: Assignment,
        pages: list[StoredFile],
        by: str,
        checks: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """A unit's delivery (a file, or every page of an album) goes to the
        step's reviewers with Terima / Kembalikan; returns what it said."""
        first = pages[0]
        context = {
            **step_context(run, sop, step, rs),
            "unit_name": await self.reads.unit_name(s, a.unit_id),
            "name": first.original_name,
            "size": sum(f.size for f in pages),
            "version": first.version,
            "by": by,
            "sha256": first.sha256,
            "file_id": first.id,
            "checks": checks,
            "actions": [t.as_dict() for t in review_actions(first.id or 0)],
        }
        if first.batch is not None:
            context.update(pages=len(pages), album=[f.id for f in pages])
        for m in await self.reads.holders(s, step.reviewer) if step.reviewer else []:
            await self.notify(
                s,
                m.id or 0,
                "file_for_review",
                f"review:{a.id}:{first.version}:{m.id}",
                context,
                run=run,
                run_step_id=rs.id,
                file_id=first.id,
            )
        return context

    async def missing(self, s: AsyncSession, sop: Sop, a: Assignment) -> dict[str, Any]:
        """An assignment nobody holds, as data for the event and the warning."""
        role = role_name(sop, a.role)
        unit = await self.reads.unit_name(s, a.unit_id)
        return {
            "role": a.role,
            "role_name": role,
            "unit": unit,
            "label": f"{role} ({unit})" if unit else role,
        }

    async def warn_unstaffed(
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
        await self.kit.event(
            s,
            "unstaffed",
            run=run,
            actor_id=None,
            run_step_id=rs.id,
            step=step.number,
            missing=missing,
        )
        recipients = [m.id or 0 for m in await self.reads.holders(s, ADMIN)]
        if step.action == Action.collect and step.reviewer:
            recipients += [m.id or 0 for m in await self.reads.holders(s, step.reviewer)]
        if actor_id is not None:
            recipients.append(actor_id)
        context = {
            **step_context(run, sop, step, rs),
            "missing": missing,
            "closable": step.action == Action.collect,
        }
        for member_id in dict.fromkeys(recipients):
            await self.notify(
                s,
                member_id,
                "unstaffed",
                f"unstaffed:{rs.id}:{member_id}",
                context,
                run=run,
                run_step_id=rs.id,
            )

    # --------------------------------------------------------- settled buttons

    async def retire_messages(
        self,
        s: AsyncSession,
        run: Run,
        rs: RunStep,
        kind: Settled,
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
        rows = list((await s.exec(query.order_by(col(Notification.id)))).all())
        if assignment_ids is None and not every:
            # A reminder may name another step's assignment (a unit still
            # owing on the collection while its validation is late).
            kept = []
            for r in rows:
                a = await s.get(Assignment, r.assignment_id) if r.assignment_id else None
                if a is None or a.state in FINAL:
                    kept.append(r)
            rows = kept
        return await self.retire_rows(
            s, run, rs, rows, kind, actor_id=actor_id, skip_member=skip_member, **details
        )

    async def retire_run(
        self, s: AsyncSession, run: Run, kind: Settled, *, actor_id: int | None
    ) -> int:
        """The run has ended: every message of it that still carries a button
        (tasks, /tugas lines, reviews, invitations, returned files) loses it,
        with a line saying why."""
        rows = (
            await s.exec(
                select(Notification).where(
                    Notification.run_id == run.id,
                    col(Notification.template).in_(RUN_BUTTON_TEMPLATES),
                    col(Notification.state).in_([OutboxState.pending, OutboxState.sent]),
                    col(Notification.edits_id).is_(None),
                )
            )
        ).all()
        by_step: dict[int, list[Notification]] = {}
        for row in rows:
            by_step.setdefault(row.run_step_id or 0, []).append(row)
        settled = 0
        for rs_id, group in sorted(by_step.items()):
            rs = await s.get(RunStep, rs_id)
            if rs is not None:
                settled += await self.retire_rows(s, run, rs, group, kind, actor_id=actor_id)
        return settled

    async def retire_invitations(
        self,
        s: AsyncSession,
        run: Run,
        meeting_rs: RunStep,
        kind: Settled,
        *,
        actor_id: int | None,
        **details: Any,
    ) -> int:
        """The step held at the meeting is done: Hadir / Tidak hadir can no
        longer be answered, and an invitation that carried that step's task
        says who finished it, like the task messages."""
        rows = (
            await s.exec(
                select(Notification).where(
                    Notification.run_step_id == meeting_rs.id,
                    Notification.template == "meeting_invitation",
                    col(Notification.state).in_([OutboxState.pending, OutboxState.sent]),
                    col(Notification.edits_id).is_(None),
                )
            )
        ).all()
        return await self.retire_rows(
            s, run, meeting_rs, list(rows), kind, actor_id=actor_id, **details
        )

    async def retire_rows(
        self,
        s: AsyncSession,
        run: Run,
        rs: RunStep,
        rows: list[Notification],
        kind: Settled,
        *,
        actor_id: int | None,
        skip_member: int | None = None,
        **details: Any,
    ) -> int:
        """Queue, for each of these messages, the edit that takes its buttons
        away and says what happened (a file message only loses its buttons);
        one not sent yet is dropped instead, as nobody needs it any more."""
        now = self.kit.clock.now()
        context = {
            "run_title": run.title,
            "number": rs.number,
            "iteration": rs.iteration,
            "kind": kind.value,
            "actor_id": actor_id,
            "by": await self.reads.name_of(s, actor_id),
            "at": iso(now),
            **details,
        }
        settled = 0
        for row in rows:
            if row.member_id == skip_member:
                continue
            if row.template == "file_for_review" and row.state == OutboxState.pending:
                await drop(s, row, f"file_{kind.value}", now)
                continue
            edit = await self.notify(
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
            settled += edit is not None
        return settled

    async def review_messages(self, s: AsyncSession, files: list[StoredFile]) -> list[Notification]:
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


def settled_kind(actor_id: int | None, decided: bool, closed: bool) -> Settled:
    if actor_id is None:
        return Settled.auto
    if decided:
        return Settled.decided
    return Settled.closed if closed else Settled.done
