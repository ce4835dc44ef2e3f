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
    Member,
    Notification,
    OutboxState,
    Run,
    RunStep,
    StepState,
    StoredFile,
)
from bot.outbox import queue
from bot.run.actions import draft_action, follow_actions, review_actions, step_actions
from bot.run.drafts import SEND_LIMIT, Drafts, draft_of
from bot.run.kit import RunKit
from bot.run.reads import Reads, role_name, step_context
from bot.run.settle import Settling
from bot.sop import Action, Sop, Step
from bot.views import ADMIN

# Messages that carry a document to its reader.
FILE_CARRIERS = ("task", "attachment", "distributed")


class TaskReason(StrEnum):
    """Why a task message goes to a person (its heading says so)."""

    opened = "opened"  # the step opened
    joined = "joined"  # the person joined after it opened
    delegated = "delegated"  # a colleague handed it over


class Messages:
    def __init__(self, kit: RunKit, reads: Reads, drafts: Drafts) -> None:
        self.kit = kit
        self.reads = reads
        self.drafts = drafts
        # Taking spent buttons off messages already sent (bot/run/settle.py).
        self.settle = Settling(kit, reads, self)

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
        office_hours_only: bool = False,
    ) -> Notification | None:
        """Queue a message about a run (None when its key was queued before).
        `office_hours_only` is for what the deadlines send (reminders,
        escalations, the digest): it waits for opening, and a newer one
        supersedes an older one still unsent to the same person about the
        same step."""
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
            office_hours_only=office_hours_only,
            supersede=office_hours_only,
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
        draft = await draft_of(s, rs)
        if draft is not None and draft.size <= SEND_LIMIT:
            files = [draft, *files]
        new = [f for f in files if not await self._received(s, member, f)]
        actions = step_actions(step, rs, a)
        context = step_context(run, sop, step, rs)
        if draft is not None:
            actions = [draft_action(rs.id or 0, draft.id or 0, step.draft), *actions]
            context["draft"] = {
                "kind": step.draft,
                "name": draft.original_name,
                "size": draft.size,
                "sent": draft.size <= SEND_LIMIT,
                "run_id": run.id,
                "path": draft.storage_path,
                # What using it gives the step (a letter: its number).
                "note": await self.drafts.note_of_use(s, step, rs),
            }
        context.update(
            roles=[role_name(sop, r) for r in roles or [a.role] if r in sop.roles],
            assignment_id=a.id,
            unit_name=await self.reads.unit_name(s, a.unit_id),
            notes=await self.notes_since(s, run, sop, rs),
            actions=[t.as_dict() for t in actions],
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
        a correction note reaches the person who must act on it. A
        correction (a step marked returned) starts a new round: notes from
        before it are stale and left out.
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
        unit's reviewer on duty (`Reads.reviewer_on_duty`) with Terima /
        Kembalikan; returns what it said."""
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
        reviewers = await self.reads.reviewer_on_duty(s, step.reviewer, a) if step.reviewer else []
        for m in reviewers:
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
