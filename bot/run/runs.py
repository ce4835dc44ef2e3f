"""Commands on a whole run: start, cancel, pause reminders, move a due time.

Each is one transaction: the rule (bot/run/rules.py), the change, its events
and the messages it implies.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select

from bot.errors import InvalidInput, NotFound, StepNotOpen
from bot.models import Run, RunState, RunStep, StepState
from bot.run.flow import Flow
from bot.run.kit import RunKit
from bot.run.messages import Messages
from bot.run.reads import Reads
from bot.run.rules import Rules, check_note
from bot.run.settle import Settled
from bot.sop import Action
from bot.views import MAX_TITLE, iso


class RunCommands:
    def __init__(
        self, kit: RunKit, reads: Reads, rules: Rules, messages: Messages, flow: Flow
    ) -> None:
        self.kit = kit
        self.reads = reads
        self.rules = rules
        self.messages = messages
        self.flow = flow

    async def start(
        self,
        actor_id: int,
        title: str,
        *,
        sop_key: str | None = None,
        note: str | None = None,
        request_key: str | None = None,
    ) -> Run:
        """Start a run. When the starter holds step 1's role, starting it is
        step 1 (the disposition) and the note goes to the next actor.

        `request_key` names the request (a Telegram update): asked again, as
        after a crash and a redelivery, it returns the run it started."""
        title = " ".join((title or "").split())
        if not title:
            raise InvalidInput("title_missing")
        if len(title) > MAX_TITLE:
            raise InvalidInput("title_too_long", limit=MAX_TITLE)
        sops = self.kit.sops
        if sop_key is None:
            sop = sops.all()[0]
        elif sop_key in sops:
            sop = sops.get(sop_key)
        else:
            raise NotFound("sop", sop_key=sop_key)
        async with self.kit.command() as s:
            roles = await self.rules.require_starter(s, actor_id, sop)
            note = check_note(note, "optional")
            if request_key is not None:
                earlier = (await s.exec(select(Run).where(Run.request_key == request_key))).first()
                if earlier is not None:
                    return earlier
            run = Run(
                sop_key=sop.key,
                sop_version=await self.kit.definitions.remember(s, sop),
                title=title,
                started_at=self.kit.clock.now(),
                started_by=actor_id,
                request_key=request_key,
            )
            s.add(run)
            await s.flush()
            for step in sop.steps:
                s.add(RunStep(run_id=run.id or 0, step_key=step.key, number=step.number))
            await s.flush()
            await self.kit.event(
                s,
                "run_started",
                run=run,
                actor_id=actor_id,
                title=title,
                sop=sop.key,
                sop_version=run.sop_version,
            )
            first = sop.first
            acts_first = (
                bool(roles & set(first.actors))
                and first.action == Action.confirm
                and first.files != "required"
            )
            rs = await self.flow.open_step(
                s, run, sop, first.key, actor_id=actor_id, send_tasks=not acts_first
            )
            if acts_first:
                await self.flow.finish_step(
                    s, run, sop, rs, actor_id, outcome="done", note=note, next_key=first.next
                )
            return run

    async def cancel(self, actor_id: int, run_id: int, reason: str) -> Run:
        """Stop a run for good, with the reason; everyone involved is told."""
        async with self.kit.command() as s:
            run = await self.reads.lock_run(s, run_id)
            sop = await self.kit.sop_of(s, run)
            await self.rules.require_starter(s, actor_id, sop)
            kept = check_note(reason, "required") or ""
            now = self.kit.clock.now()
            involved = await self.reads.involved(s, run)
            run.state, run.ended_at, run.cancel_reason = RunState.cancelled, now, kept
            run.cancelled_by = actor_id
            s.add(run)
            steps = (await s.exec(select(RunStep).where(RunStep.run_id == run.id))).all()
            # Every button of the run goes, also a unit's on a closed collection.
            await self.messages.settle.retire_run(s, run, Settled.cancelled, actor_id=actor_id)
            for rs in steps:
                if rs.state in (StepState.open, StepState.waiting):
                    rs.state = StepState.skipped
                    s.add(rs)
            await s.flush()
            await self.kit.event(s, "run_cancelled", run=run, actor_id=actor_id, reason=kept)
            for member_id in involved:
                if member_id == actor_id:
                    continue  # the one who cancels is answered at once
                await self.messages.notify(
                    s,
                    member_id,
                    "run_cancelled",
                    f"run_cancelled:{run.id}:{member_id}",
                    {"run_title": run.title, "reason": kept},
                    run=run,
                )
            return run

    async def pause(self, actor_id: int, run_id: int, paused: bool) -> Run:
        """Pause or resume a run's reminders (the head is travelling)."""
        async with self.kit.command() as s:
            await self.rules.require_admin(s, actor_id)
            run = await self.reads.lock_run(s, run_id)
            if run.reminders_paused == paused:
                return run
            run.reminders_paused = paused
            s.add(run)
            if not paused:
                # Reminders dropped while paused are owed again: the deadline
                # sweep looks at the run's open steps afresh (RunStep.check_at).
                await s.exec(
                    update(RunStep)
                    .where(col(RunStep.run_id) == run.id, col(RunStep.state) == StepState.open)
                    .values(check_at=col(RunStep.due_at))
                )
            await self.kit.event(
                s, "reminders_paused" if paused else "reminders_resumed", run=run, actor_id=actor_id
            )
            return run

    async def move_due(self, actor_id: int, run_step_id: int, due_at: datetime) -> RunStep:
        """An admin moves a step's due time; recorded with the old value.
        Reminders start afresh: the due time is part of their keys."""
        async with self.kit.command() as s:
            await self.rules.require_admin(s, actor_id)
            run, rs = await self.reads.run_step(s, run_step_id)
            if rs.state != StepState.open:
                raise StepNotOpen()
            old = rs.due_at
            rs.due_at, rs.check_at = due_at, self.kit.first_late(due_at)  # reminders afresh
            s.add(rs)
            await self.kit.event(
                s,
                "due_moved",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                step=rs.number,
                old=iso(old),
                new=iso(due_at),
            )
            return rs

    async def open_step_id(self, run_id: int, number: int) -> int:
        """The open step with this number in the run (for commands that name
        a step by its number, like /tenggat)."""
        async with self.kit.db.session() as s:
            if await s.get(Run, run_id) is None:
                raise NotFound("run")
            rs = (
                await s.exec(
                    select(RunStep).where(
                        RunStep.run_id == run_id,
                        RunStep.number == number,
                        col(RunStep.state) == StepState.open,
                    )
                )
            ).first()
        if rs is None:
            raise StepNotOpen()
        return rs.id or 0
