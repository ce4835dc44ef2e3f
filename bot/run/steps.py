"""Commands on one step: finish it (Selesai), decide it, set its meeting,
answer a meeting invitation. Each is one transaction: the rule from
bot/run/rules.py, the change, its events and the messages it implies.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import (
    AlreadyDone,
    FilesRequired,
    InvalidInput,
    NotFound,
    OutsideOfficeHours,
    StepNotOpen,
)
from bot.models import (
    Assignment,
    AssignmentState,
    Attendance,
    Meeting,
    Member,
    RunStep,
    StepState,
    StoredFile,
)
from bot.run.actions import rsvp_actions
from bot.run.drafts import DRAFT, Drafts
from bot.run.flow import Flow
from bot.run.kit import RunKit
from bot.run.messages import Messages
from bot.run.reads import Reads, step_context
from bot.run.rules import Purpose, Rules, StepAccess, check_note
from bot.sop import Action
from bot.views import iso

MAX_PLACE = 200

# What a step of each action expects instead of Selesai.
NOT_BY_COMPLETE = {
    Action.decide: "choose_outcome",
    Action.collect: "upload_expected",
    Action.meeting: "meeting_expected",
    Action.validate: "review_expected",
}


def _mark_done(got: StepAccess, now: datetime) -> Assignment:
    a = got.assignment
    assert a is not None  # an act on a step always has the member's assignment
    a.state, a.updated_at = AssignmentState.done, now
    return a


class StepCommands:
    def __init__(
        self,
        kit: RunKit,
        reads: Reads,
        rules: Rules,
        messages: Messages,
        flow: Flow,
        drafts: Drafts,
    ) -> None:
        self.kit = kit
        self.reads = reads
        self.rules = rules
        self.messages = messages
        self.flow = flow
        self.drafts = drafts

    async def complete(self, actor_id: int, run_step_id: int, note: str | None = None) -> RunStep:
        """Selesai: finish a confirm, distribute, validate or meeting step.
        At a step that drafts a letter the note is the letter's number (the
        drawn one or another the sekretaris typed: bot/run/letters.py)."""
        async with self.kit.command() as s:
            got = await self.rules.step_access(s, actor_id, run_step_id, Purpose.act)
            await self._finish(s, got, note, draft_used=False)
            return got.rs

    async def _finish(
        self, s: AsyncSession, got: StepAccess, note: str | None, *, draft_used: bool
    ) -> None:
        """Selesai, or the bot's draft used: the step's checks, then done."""
        run, rs, sop, step = got.run, got.rs, got.sop, got.step
        if step.action in NOT_BY_COMPLETE:
            raise InvalidInput(NOT_BY_COMPLETE[step.action])
        meeting = await self.reads.meeting_of(s, run, step)
        if meeting is not None and self.kit.clock.now() < meeting.starts_at:
            raise StepNotOpen("meeting_not_started", starts_at=iso(meeting.starts_at))
        if draft_used:
            note = await self.drafts.note_of_use(s, step, rs) or note
        note = check_note(note, step.note, step.note_prompt)
        if step.files == "required" and not await self.reads.file_count(s, rs_id=rs.id):
            raise FilesRequired()
        if step.action == Action.distribute:
            await self._distribute(s, got)
        await self.drafts.finished(
            s, run, step, rs, got.member.id or 0, note, draft_used=draft_used
        )
        s.add(_mark_done(got, self.kit.clock.now()))
        await self.flow.finish_step(
            s, run, sop, rs, got.member.id, outcome="done", note=note, next_key=step.next
        )

    async def use_draft(
        self, actor_id: int, run_step_id: int, file_id: int, note: str | None = None
    ) -> RunStep:
        """Gunakan draf ini (a letter: Pakai surat ini): the bot's draft for
        this step becomes the actor's document of the step (a file of theirs,
        the draft's bytes), and the step finishes as after an upload and
        Selesai; what the draft's kind adds (a letter's number as the note)
        comes from its hook (bot/run/drafts.py)."""
        async with self.kit.command() as s:
            got = await self.rules.step_access(s, actor_id, run_step_id, Purpose.act)
            run, rs, a = got.run, got.rs, got.assignment
            assert a is not None
            draft = await s.get(StoredFile, file_id)
            if draft is None or draft.run_step_id != rs.id or draft.kind != DRAFT:
                raise NotFound("file")
            # The next version of this role's document on the step, over rounds.
            last = (
                await s.exec(
                    select(func.max(StoredFile.version))
                    .join(RunStep, col(RunStep.id) == col(StoredFile.run_step_id))
                    .join(Assignment, col(Assignment.id) == col(StoredFile.assignment_id))
                    .where(
                        RunStep.run_id == run.id,
                        RunStep.step_key == rs.step_key,
                        Assignment.role == a.role,
                    )
                )
            ).one()
            used = StoredFile(
                run_id=run.id or 0,
                run_step_id=rs.id or 0,
                assignment_id=a.id,
                unit_id=a.unit_id,
                uploader_id=actor_id,
                original_name=draft.original_name,
                mime_type=draft.mime_type,
                size=draft.size,
                sha256=draft.sha256,
                # The same bytes: files in storage are never changed.
                storage_path=draft.storage_path,
                version=int(last or 0) + 1,
                received_at=self.kit.clock.now(),
            )
            s.add(used)
            await s.flush()
            await self.kit.event(
                s,
                "draft_used",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                file_id=used.id,
                draft_id=draft.id,
                name=used.original_name,
                sha256=used.sha256,
                version=used.version,
            )
            await self._finish(s, got, note, draft_used=True)
            return rs

    async def _distribute(self, s: AsyncSession, got: StepAccess) -> None:
        """Send the step's documents (the latest version of each) to its roles."""
        run, sop, step, rs = got.run, got.sop, got.step, got.rs
        files = await self.reads.latest_files(s, run, step.files_from or "")
        if not files:
            raise FilesRequired()
        recipients: dict[int, Member] = {}
        for role in step.to_roles:
            for m in await self.reads.holders(s, role):
                recipients[m.id or 0] = m
        context = step_context(run, sop, step, rs)
        for member in recipients.values():
            for f in files:
                await self.messages.notify(
                    s,
                    member.id or 0,
                    "distributed",
                    f"dist:{rs.id}:{member.id}:{f.id}",
                    {**context, "name": f.original_name, "version": f.version},
                    run=run,
                    run_step_id=rs.id,
                    file_id=f.id,
                )
        await self.kit.event(
            s,
            "distributed",
            run=run,
            actor_id=got.member.id,
            run_step_id=rs.id,
            files=[f.id for f in files],
            recipients=len(recipients),
            roles=step.to_roles,
        )

    async def decide(
        self, actor_id: int, run_step_id: int, outcome: str | int, note: str | None = None
    ) -> RunStep:
        """Choose one of a decision step's outcomes; the outcome picks the next step."""
        async with self.kit.command() as s:
            got = await self.rules.step_access(s, actor_id, run_step_id, Purpose.act)
            run, rs, sop, step = got.run, got.rs, got.sop, got.step
            if step.action != Action.decide:
                raise InvalidInput("not_a_decision")
            if isinstance(outcome, int):
                chosen = step.outcomes[outcome] if 0 <= outcome < len(step.outcomes) else None
            else:
                chosen = step.outcome(outcome)
            if chosen is None:
                raise InvalidInput("unknown_outcome")
            note = check_note(note, chosen.note, chosen.note_prompt)
            s.add(_mark_done(got, self.kit.clock.now()))
            await self.kit.event(
                s,
                "decision",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                step=step.number,
                outcome=chosen.key,
                label=chosen.label,
                note=note,
            )
            state = StepState.returned if chosen.marks == "returned" else StepState.done
            mark = await self.messages.mark(s)
            await self.flow.finish_step(
                s,
                run,
                sop,
                rs,
                actor_id,
                outcome=chosen.key,
                note=note,
                state=state,
                next_key=chosen.next,
            )
            # Whoever got a task just now reads the decision (and its note)
            # in it; the others the SOP names are told on their own.
            tasked = await self.messages.tasked_since(s, run, mark)
            context = {
                **step_context(run, sop, step, rs),
                "label": chosen.label,
                "note": note,
                "by": got.member.name,
            }
            for role in chosen.notify:
                for m in await self.reads.holders(s, role):
                    if m.id in tasked:
                        continue
                    await self.messages.notify(
                        s,
                        m.id or 0,
                        "decision",
                        f"decision:{rs.id}:{m.id}",
                        context,
                        run=run,
                        run_step_id=rs.id,
                    )
            return rs

    async def schedule_meeting(
        self,
        actor_id: int,
        run_step_id: int,
        starts_at: datetime,
        place: str,
        *,
        outside_hours_ok: bool = False,
    ) -> Meeting:
        """Set the meeting and invite; the invitation is the step's output.
        A time outside the office calendar's days or hours is refused with
        OutsideOfficeHours until the organiser confirms it (`outside_hours_ok`)."""
        async with self.kit.command() as s:
            got = await self.rules.step_access(s, actor_id, run_step_id, Purpose.act)
            run, rs, sop, step = got.run, got.rs, got.sop, got.step
            if step.action != Action.meeting:
                raise InvalidInput("not_a_meeting")
            place = " ".join((place or "").split())
            if not place:
                raise InvalidInput("place_missing")
            if len(place) > MAX_PLACE:
                raise InvalidInput("place_too_long", limit=MAX_PLACE)
            if starts_at.tzinfo is None:
                raise InvalidInput("time_missing")
            if starts_at < self.kit.clock.now():
                raise InvalidInput("time_past")
            odd = self.kit.calendar.outside_hours(starts_at)
            if odd is not None and not outside_hours_ok:
                raise OutsideOfficeHours(starts_at=iso(starts_at), place=place, **odd)
            meeting = Meeting(
                run_step_id=rs.id or 0, starts_at=starts_at, place=place, created_by=actor_id
            )
            s.add(meeting)
            await s.flush()
            invitees: dict[int, Member] = {}
            for role in step.invitees:
                for m in await self.reads.holders(s, role):
                    invitees[m.id or 0] = m
            invitees.pop(actor_id, None)
            context = {
                **step_context(run, sop, step, rs),
                "meeting_id": meeting.id,
                "starts_at": iso(starts_at),
                "place": place,
                "by": got.member.name,
                "actions": [t.as_dict() for t in rsvp_actions(meeting.id or 0)],
            }
            for m in invitees.values():
                await self.messages.notify(
                    s,
                    m.id or 0,
                    "meeting_invitation",
                    f"meeting:{meeting.id}:{m.id}",
                    context,
                    run=run,
                    run_step_id=rs.id,
                )
            await self.kit.event(
                s,
                "meeting_scheduled",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                meeting_id=meeting.id,
                starts_at=iso(starts_at),
                place=place,
                invitees=[m.name for m in invitees.values()],
            )
            s.add(_mark_done(got, self.kit.clock.now()))
            local = starts_at.astimezone(self.kit.calendar.tz).strftime("%d-%m-%Y %H:%M")
            await self.flow.finish_step(
                s,
                run,
                sop,
                rs,
                actor_id,
                outcome="diundang",
                note=f"Rapat {local}, {place}",
                next_key=step.next,
            )
            return meeting

    async def answer_meeting(self, actor_id: int, meeting_id: int, attending: bool) -> Attendance:
        """Hadir / Tidak hadir; a changed answer is recorded as a new event."""
        async with self.kit.command() as s:
            await self.reads.member(s, actor_id)
            meeting = await s.get(Meeting, meeting_id)
            if meeting is None:
                raise NotFound("meeting")
            run, rs = await self.reads.run_step(s, meeting.run_step_id)
            step = (await self.kit.sop_of(s, run)).step(rs.step_key)
            await self.rules.require_invitee(s, actor_id, step)
            now = self.kit.clock.now()
            if meeting.starts_at < now:
                raise StepNotOpen("meeting_over")
            existing = (
                await s.exec(
                    select(Attendance).where(
                        Attendance.meeting_id == meeting_id, Attendance.member_id == actor_id
                    )
                )
            ).first()
            if existing is not None and existing.attending == attending:
                raise AlreadyDone()
            if existing is None:
                existing = Attendance(
                    meeting_id=meeting_id, member_id=actor_id, attending=attending, answered_at=now
                )
            existing.attending, existing.answered_at = attending, now
            s.add(existing)
            await s.flush()
            await self.kit.event(
                s,
                "attendance",
                run=run,
                actor_id=actor_id,
                meeting_id=meeting_id,
                attending=attending,
            )
            return existing
