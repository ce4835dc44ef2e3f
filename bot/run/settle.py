"""Buttons that are spent: the messages already sent for a step, a file or a
run are edited (through the outbox) to lose their buttons and say what
happened, by whom and when; one not sent yet is dropped instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import (
    Assignment,
    AssignmentState,
    Notification,
    OutboxState,
    ReviewState,
    Run,
    RunState,
    RunStep,
    StepState,
    StoredFile,
)
from bot.outbox import SentMessage, drop, keep_sent
from bot.run.kit import RunKit
from bot.run.reads import Reads
from bot.sop import Step
from bot.views import iso

if TYPE_CHECKING:  # messages.py builds this part; only the type goes back
    from bot.run.messages import Messages

# Messages with buttons for a step: edited once their step (or assignment)
# is settled, so nobody keeps buttons that no longer work.
# A /tugas line ("task_line") is kept as a sent row by its handler for this.
SETTLED_TEMPLATES = (
    "task",
    "reminder",
    "collection_started",
    "task_line",
    "note_saved",  # a note typed under a task is answered with its buttons
    "file_returned",
)
# Every message that may carry a button of a run: none keeps one once the
# run has ended.
# A unit's file for review: as the outbox sent it to the unit's reviewer, or
# as a handler showed it again ("Lihat berkas unit", kept as a sent row).
REVIEW_TEMPLATES = ("file_for_review", "review_caption")
RUN_BUTTON_TEMPLATES = (*SETTLED_TEMPLATES, "meeting_invitation", *REVIEW_TEMPLATES)
# An assignment in one of these states owes nothing more: its buttons go.
FINAL = (AssignmentState.done, AssignmentState.closed, AssignmentState.accepted)


# Built once, as the other statements every update makes (ARCHITECTURE,
# "Statements built once"): `keep` runs on every /tugas and every note.
_LOCK_RUNS = (
    select(Run)
    .where(col(Run.id).in_(bindparam("run_ids", expanding=True)))
    .order_by(col(Run.id))
    .with_for_update()
)
# The kept rows whose buttons may still act, with what settles them.
_KEPT = (
    select(Notification, RunStep, Assignment, StoredFile)
    .join(RunStep, col(RunStep.id) == col(Notification.run_step_id))
    .join(Assignment, col(Assignment.id) == col(Notification.assignment_id), isouter=True)
    .join(StoredFile, col(StoredFile.id) == col(Notification.file_id), isouter=True)
    .where(
        col(Notification.key).in_(bindparam("keys", expanding=True)),
        col(Notification.state).in_([OutboxState.pending, OutboxState.sent]),
        col(Notification.edits_id).is_(None),
    )
    .order_by(col(Notification.id))
)


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

    async def keep(self, messages: Sequence[SentMessage]) -> int:
        """Keep messages with buttons a handler sent itself (`/tugas` lines,
        a unit's file shown again for review, the answer to a note) as sent
        rows, and in the same transaction catch up those whose step,
        assignment, file or run was settled while they were on their way:
        they lose their buttons now, edited as the settling would have
        edited them. The runs are locked first, as every settling locks its
        run (`Reads.lock_run`): a settling that commits after this finds
        the rows itself, one that committed before is seen here. Returns how
        many were settled. The handler's last write: the update that sent
        them is marked done in the same commit."""
        if not messages:
            return 0
        async with self.kit.command() as s:
            ids = sorted({m.run_id for m in messages if m.run_id is not None})
            runs = await self._lock(s, ids)
            await keep_sent(s, messages, self.kit.clock.now())
            return await self._catch_up(s, runs, [m.key for m in messages])

    async def _lock(self, s: AsyncSession, ids: Sequence[int]) -> dict[int | None, Run]:
        """These runs, locked in id order (as two settlings would lock them)."""
        locked = await s.exec(_LOCK_RUNS, params={"run_ids": list(ids)})
        return {run.id: run for run in locked.all()}

    async def _catch_up(
        self, s: AsyncSession, runs: dict[int | None, Run], keys: Sequence[str]
    ) -> int:
        # Read after the locks are held, so that what a settling that held
        # them before committed is seen (PostgreSQL reads each statement as
        # of its start).
        rows = (await s.exec(_KEPT, params={"keys": list(keys)})).all()
        settled = 0
        for row, rs, a, f in rows:
            run = runs.get(row.run_id)
            spent = None if run is None else await self._spent(s, run, rs, row, a, f)
            if run is None or spent is None:
                continue
            kind, actor_id, at, details = spent
            if at is not None:
                details["at"] = iso(at)
            settled += await self.retire_rows(s, run, rs, [row], kind, actor_id=actor_id, **details)
        return settled

    async def _spent(
        self,
        s: AsyncSession,
        run: Run,
        rs: RunStep,
        row: Notification,
        a: Assignment | None,
        f: StoredFile | None,
    ) -> tuple[Settled, int | None, datetime | None, dict[str, Any]] | None:
        """Why a kept message's buttons no longer act, as the settling that
        would have edited it says it (what happened, by whom, when), from
        the columns; None while they still act. The first settling wins, as
        it would have: a unit's acceptance or a delegation comes before the
        end of its step, a step's end before the run's."""
        if f is not None:  # a unit's file for review: decided, or replaced
            if f.review_state in (ReviewState.accepted, ReviewState.returned):
                return Settled(f.review_state.value), f.reviewed_by, f.reviewed_at, {}
            if f.review_state == ReviewState.superseded:
                newer = (
                    await s.exec(
                        select(StoredFile)
                        .where(
                            StoredFile.assignment_id == f.assignment_id,
                            StoredFile.version > f.version,
                        )
                        .order_by(col(StoredFile.id))
                    )
                ).first()
                return (
                    Settled.superseded,
                    newer.uploader_id if newer else None,
                    newer.received_at if newer else None,
                    {},
                )
        elif a is not None and a.state == AssignmentState.accepted:
            accepted = (
                await s.exec(
                    select(StoredFile)
                    .where(
                        StoredFile.assignment_id == a.id,
                        StoredFile.review_state == ReviewState.accepted,
                    )
                    .order_by(col(StoredFile.version).desc())
                )
            ).first()
            return (
                Settled.accepted,
                accepted.reviewed_by if accepted else None,
                accepted.reviewed_at if accepted else None,
                {},
            )
        elif a is not None and a.state == AssignmentState.closed:
            return Settled.closed, a.closed_by, a.closed_at, {}
        elif a is not None and a.member_id is not None and a.member_id != row.member_id:
            to = await self.reads.name_of(s, a.member_id)
            return Settled.delegated, a.delegated_by, a.delegated_at, {"to": to}
        elif (
            rs.state != StepState.open
            and rs.done_at is not None  # finished (Flow.finish_step), not skipped
            and (a is None or a.state in FINAL)  # a delivered unit may still send again
        ):
            step = (await self.kit.sop_of(s, run)).step(rs.step_key)
            kind, label = step_settled(step, rs.done_by, rs.outcome)
            return kind, rs.done_by, rs.done_at, {"outcome": rs.outcome, "label": label}
        if run.state == RunState.cancelled:
            return Settled.cancelled, run.cancelled_by, run.ended_at, {}
        if run.state == RunState.done:
            return Settled.run_done, None, run.ended_at, {}
        return None

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


def step_settled(
    step: Step, actor_id: int | None, outcome: str | None
) -> tuple[Settled, str | None]:
    """How a finished step's messages say it ended, and the label of the
    outcome chosen (a decision's): the same line whether the step's
    settling edits them (flow.py) or a line kept late is caught up
    (`Settling.keep`)."""
    chosen = step.outcome(outcome) if step.outcomes and outcome else None
    if actor_id is None:
        kind = Settled.auto
    elif chosen is not None:
        kind = Settled.decided
    else:
        kind = Settled.closed if outcome == "ditutup" else Settled.done
    return kind, chosen.label if chosen else None
