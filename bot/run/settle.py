"""Buttons that are spent: the messages already sent for a step, a file or a
run are edited (through the outbox) to lose their buttons and say what
happened, by whom and when; one not sent yet is dropped instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import (
    Assignment,
    AssignmentState,
    Notification,
    OutboxState,
    Run,
    RunStep,
    StoredFile,
)
from bot.outbox import drop
from bot.run.kit import RunKit
from bot.run.reads import Reads
from bot.views import iso

if TYPE_CHECKING:  # messages.py builds this part; only the type goes back
    from bot.run.messages import Messages

# Messages with buttons for a step: edited once their step (or assignment)
# is settled, so nobody keeps buttons that no longer work.
# A /tugas line ("task_line") is kept as a sent row by its handler for this.
SETTLED_TEMPLATES = ("task", "reminder", "collection_started", "task_line", "file_returned")
# Every message that may carry a button of a run: none keeps one once the
# run has ended.
# A unit's file for review: as the outbox sent it to the unit's reviewer, or
# as a handler showed it again ("Lihat berkas unit", kept as a sent row).
REVIEW_TEMPLATES = ("file_for_review", "review_caption")
RUN_BUTTON_TEMPLATES = (*SETTLED_TEMPLATES, "meeting_invitation", *REVIEW_TEMPLATES)
# An assignment in one of these states owes nothing more: its buttons go.
FINAL = (AssignmentState.done, AssignmentState.closed, AssignmentState.accepted)


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


class Settling:
    def __init__(self, kit: RunKit, reads: Reads, messages: Messages) -> None:
        self.kit = kit
        self.reads = reads
        self.messages = messages

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
            edit = await self.messages.notify(
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
        """The planners' review messages (with Terima / Kembalikan) of these
        files: each copy that was sent or shown, whoever has it."""
        if not files:
            return []
        return list(
            (
                await s.exec(
                    select(Notification).where(
                        col(Notification.template).in_(REVIEW_TEMPLATES),
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
