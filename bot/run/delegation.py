"""Handing a task to a colleague (Limpahkan): who may take it, and the
hand-over itself. Only someone who could hold the task themselves (the same
role, and the same unit for a unit's task) may receive it, so a unit's data
never goes to another unit.
"""

from __future__ import annotations

from bot.errors import AlreadyDone, DelegateRefused, NotFound
from bot.models import Assignment, Member
from bot.run.kit import RunKit
from bot.run.messages import Messages, TaskReason
from bot.run.reads import Reads, role_name
from bot.run.rules import Rules
from bot.run.settle import Settled
from bot.views import Delegate

MAX_DELEGATES = 40


class Delegation:
    def __init__(self, kit: RunKit, reads: Reads, rules: Rules, messages: Messages) -> None:
        self.kit = kit
        self.reads = reads
        self.rules = rules
        self.messages = messages

    async def candidates(self, actor_id: int, assignment_id: int) -> list[Delegate]:
        """Who the actor could hand this assignment to."""
        async with self.kit.db.session() as s:
            got = await self.rules.delegation_access(s, actor_id, assignment_id, lock=False)
            a = got.assignment
            role = role_name(got.sop, a.role)
            unit_name = await self.reads.unit_name(s, a.unit_id)
            return [
                Delegate(m.id or 0, m.name, role, unit_name)
                for m in await self.reads.holders(s, a.role, a.unit_id)
                if m.id not in (actor_id, a.member_id)
            ][:MAX_DELEGATES]

    async def reassign(self, actor_id: int, assignment_id: int, to_member_id: int) -> Assignment:
        """Delegate an assignment to another member; both names are recorded."""
        async with self.kit.command() as s:
            got = await self.rules.delegation_access(s, actor_id, assignment_id)
            run, rs, sop, step, a = got.run, got.rs, got.sop, got.step, got.assignment
            target = await s.get(Member, to_member_id)
            if target is None or not target.active:
                raise NotFound("member")
            if a.member_id == to_member_id:
                raise AlreadyDone()
            if not await self.rules.could_hold(s, to_member_id, a):
                raise DelegateRefused(
                    name=target.name,
                    role=role_name(sop, a.role),
                    unit=await self.reads.unit_name(s, a.unit_id),
                )
            # Who held it before: the delegate before, else the role's holders.
            before = [m.name for m in await self.reads.assignees(s, a) if m.id != to_member_id]
            await self.messages.settle.retire_messages(
                s,
                run,
                rs,
                Settled.delegated,
                actor_id=actor_id,
                assignment_ids=[a.id or 0],
                skip_member=to_member_id,
                to=target.name,
            )
            now = self.kit.clock.now()
            a.member_id, a.delegated_by, a.delegated_at = to_member_id, actor_id, now
            a.updated_at = now
            s.add(a)
            await s.flush()
            await self.kit.event(
                s,
                "reassigned",
                run=run,
                actor_id=actor_id,
                assignment_id=a.id,
                run_step_id=rs.id,
                step=step.number,
                by=got.member.name,
                from_members=before,
                to_member=target.name,
            )
            await self.messages.send_task(
                s, run, sop, step, rs, a, target, reason=TaskReason.delegated
            )
            return a
