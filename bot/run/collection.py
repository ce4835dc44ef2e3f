"""Commands on files: a unit's delivery (or a step's document), the
reviewer's accept or return, and closing units that cannot deliver.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import AlreadyDone, FileRejected
from bot.models import (
    Assignment,
    AssignmentState,
    Notification,
    OutboxState,
    ReviewState,
    RunStep,
    StoredFile,
)
from bot.run.actions import upload_action
from bot.run.albums import Albums, album_receipt_key, receipt_key
from bot.run.flow import Flow
from bot.run.kit import RunKit
from bot.run.messages import Messages
from bot.run.reads import Reads, step_context
from bot.run.rules import Purpose, Rules, StepAccess, check_note
from bot.run.settle import Settled
from bot.sop import Action, Step
from bot.storage import SavedFile, extension_of, photo_name
from bot.views import Closure, IncomingFile, Receipt, Task
from bot.workbook import (
    WORKBOOK_EXTENSIONS,
    BrokenWorkbook,
    UnsafeWorkbook,
    inspect_workbook,
    screen,
)


def check_workbook(
    step: Step, incoming: IncomingFile, unit_name: str | None = None
) -> list[dict[str, Any]]:
    """Mistakes found in a unit's workbook; a broken one is refused. Any
    workbook, at any step, is screened for macros and zip bombs, as the bot
    passes files on to others; one the step does not read may be any bytes."""
    name = incoming.original_name
    if extension_of(name) not in WORKBOOK_EXTENSIONS:
        return []
    try:
        if step.workbook is None:
            with suppress(BrokenWorkbook):  # not a zip: nothing in it to fear
                screen(incoming.data, name)
            return []
        return inspect_workbook(incoming.data, step.workbook, unit_name, name)
    except BrokenWorkbook as exc:
        raise FileRejected("broken") from exc
    except UnsafeWorkbook as exc:
        raise FileRejected(f"workbook_{exc.reason}", limit=exc.limit) from exc


class Collection:
    def __init__(
        self,
        kit: RunKit,
        reads: Reads,
        rules: Rules,
        messages: Messages,
        flow: Flow,
        albums: Albums,
    ) -> None:
        self.kit = kit
        self.reads = reads
        self.rules = rules
        self.messages = messages
        self.flow = flow
        self.albums = albums

    # ------------------------------------------------------------------ upload

    async def upload(
        self,
        actor_id: int,
        run_step_id: int,
        incoming: IncomingFile,
        *,
        unit_id: int | None = None,
    ) -> Receipt:
        """Keep a file for a step: a unit's delivery, or the step's document.

        The slow work (a first look at a workbook, copying and hashing the
        file) is done before the write transaction, so other writers never
        wait for it; the transaction checks everything again and a refusal
        there deletes the copy.
        """
        async with self.kit.db.session() as s:
            got = await self.rules.step_access(
                s, actor_id, run_step_id, Purpose.upload, unit_id=unit_id, lock=False
            )
            assert got.assignment is not None
            unit_for_check = await self.reads.unit_name(s, got.assignment.unit_id)
        self.rules.check_file(got.step, incoming.original_name, incoming.kind, incoming.size)
        checks = await asyncio.to_thread(check_workbook, got.step, incoming, unit_for_check)
        # Stored under a name the bot makes; only the extension is the sender's.
        saved = await asyncio.to_thread(
            self.kit.storage.save,
            incoming.data,
            run_id=got.run.id or 0,
            original_name=incoming.original_name,
        )
        try:
            return await self._record(actor_id, run_step_id, unit_id, incoming, saved, checks)
        except BaseException:
            await asyncio.to_thread(self.kit.storage.path(saved.relative_path).unlink, True)
            raise

    async def _record(
        self,
        actor_id: int,
        run_step_id: int,
        unit_id: int | None,
        incoming: IncomingFile,
        saved: SavedFile,
        checks: list[dict[str, Any]],
    ) -> Receipt:
        async with self.kit.command() as s:
            got = await self.rules.step_access(
                s, actor_id, run_step_id, Purpose.upload, unit_id=unit_id
            )
            run, rs, step, a = got.run, got.rs, got.step, got.assignment
            assert a is not None
            unit_name = await self.reads.unit_name(s, a.unit_id)
            previous = list(
                (
                    await s.exec(
                        select(StoredFile)
                        .where(StoredFile.run_step_id == rs.id, StoredFile.assignment_id == a.id)
                        .order_by(col(StoredFile.version).desc(), col(StoredFile.id).desc())
                    )
                ).all()
            )
            same_batch = bool(
                previous
                and incoming.batch
                and previous[0].batch == incoming.batch
                and previous[0].review_state == ReviewState.received
            )
            if previous:
                version = previous[0].version if same_batch else previous[0].version + 1
            else:
                version = await self._earlier_rounds_version(s, rs, a) + 1
            if previous and not same_batch and not incoming.batch:
                same = await self._same_again(s, got, previous, saved, unit_name)
                if same is not None:
                    return same
            name = incoming.original_name[:255] or "berkas"
            if incoming.kind == "photo":
                # Named after the unit (or step) and page; what it was sent as stays on record.
                page_no = 1 + sum(1 for f in previous if f.version == version and same_batch)
                name = photo_name(unit_name or f"langkah {step.number}", version, page_no)
            replaced: list[StoredFile] = []
            if step.action == Action.collect and not same_batch:
                for old in previous:
                    if old.review_state == ReviewState.received:
                        old.review_state = ReviewState.superseded
                        s.add(old)
                        replaced.append(old)
            # The replaced version's review messages: their buttons would act on an old file.
            await self.messages.settle.retire_rows(
                s,
                run,
                rs,
                await self.messages.settle.review_messages(s, replaced),
                Settled.superseded,
                actor_id=actor_id,
            )
            now = self.kit.clock.now()
            stored = StoredFile(
                run_id=run.id or 0,
                run_step_id=rs.id or 0,
                assignment_id=a.id,
                unit_id=a.unit_id,
                uploader_id=actor_id,
                original_name=name,
                mime_type=incoming.mime_type or "application/octet-stream",
                size=saved.size,
                sha256=saved.sha256,
                storage_path=saved.relative_path,
                version=version,
                batch=incoming.batch,
                kind=incoming.kind,
                telegram_file_id=incoming.telegram_file_id,
                received_at=now,
            )
            s.add(stored)
            await s.flush()
            await self.kit.event(
                s,
                "file_received",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                file_id=stored.id,
                unit=unit_name,
                name=stored.original_name,
                mime=stored.mime_type,
                size=stored.size,
                sha256=stored.sha256,
                version=stored.version,
                path=stored.storage_path,
                checks=checks,
                sent_as=incoming.original_name,
            )
            closed = False
            page = None
            if step.action == Action.collect:
                a.state, a.updated_at = AssignmentState.delivered, now
                s.add(a)
                await s.flush()
                if incoming.batch:
                    # One page of an album: reviewed as a whole once complete
                    # (settle_albums), never page by page.
                    page = len(await self.reads.album_pages(s, stored))
                else:
                    await self.messages.ask_review(
                        s, run, got.sop, step, rs, a, [stored], got.member.name, checks
                    )
                    closed = await self.albums.close_if_complete(s, run, got.sop, rs)
            return Receipt(stored, run.title, step.number, unit_name, closed, checks, page=page)

    async def _earlier_rounds_version(self, s: AsyncSession, rs: RunStep, a: Assignment) -> int:
        """The highest version the same uploader slot (role and unit) sent
        for this step in the run's earlier rounds, 0 if none. A loop back
        opens the step again as a new RunStep; its first file continues the
        numbering, so the round-2 document is "versi 2", not "versi 1" again."""
        slot = (
            col(Assignment.unit_id).is_(None)
            if a.unit_id is None
            else col(Assignment.unit_id) == a.unit_id
        )
        found = (
            await s.exec(
                select(func.max(StoredFile.version))
                .join(Assignment, col(Assignment.id) == col(StoredFile.assignment_id))
                .join(RunStep, col(RunStep.id) == col(StoredFile.run_step_id))
                .where(
                    RunStep.run_id == rs.run_id,
                    RunStep.step_key == rs.step_key,
                    col(RunStep.iteration) < rs.iteration,
                    Assignment.role == a.role,
                    slot,
                )
            )
        ).one()
        return int(found or 0)

    async def _same_again(
        self,
        s: AsyncSession,
        got: StepAccess,
        previous: list[StoredFile],
        saved: SavedFile,
        unit_name: str | None,
    ) -> Receipt | None:
        """The same bytes as the current version, still unreviewed: nothing
        new to keep or to review (the copy is deleted, the resend recorded)."""
        current = [f for f in previous if f.version == previous[0].version]
        if not (
            len(current) == 1
            and current[0].sha256 == saved.sha256
            and current[0].review_state == ReviewState.received
        ):
            return None
        await asyncio.to_thread(self.kit.storage.path(saved.relative_path).unlink, True)
        await self.kit.event(
            s,
            "file_resent",
            run=got.run,
            actor_id=got.member.id,
            run_step_id=got.rs.id,
            file_id=current[0].id,
            unit=unit_name,
            version=current[0].version,
            sha256=saved.sha256,
        )
        return Receipt(current[0], got.run.title, got.step.number, unit_name, False, duplicate=True)

    # ------------------------------------------------------------------ review

    async def review(
        self, actor_id: int, file_id: int, *, accept: bool, note: str | None = None
    ) -> StoredFile:
        """Accept a unit's file, or return it with a note for a new upload."""
        async with self.kit.command() as s:
            got = await self.rules.review_access(s, actor_id, file_id)
            run, rs, sop, step, stored = got.run, got.rs, got.sop, got.step, got.file
            if not accept:
                note = check_note(note, "required")
            now = self.kit.clock.now()
            pages = (
                await s.exec(
                    select(StoredFile).where(
                        StoredFile.assignment_id == stored.assignment_id,
                        StoredFile.version == stored.version,
                        StoredFile.review_state == ReviewState.received,
                    )
                )
            ).all()
            for page in pages:
                page.review_state = ReviewState.accepted if accept else ReviewState.returned
                page.review_note = None if accept else note
                page.reviewed_by, page.reviewed_at = actor_id, now
                s.add(page)
            a = await s.get(Assignment, stored.assignment_id) if stored.assignment_id else None
            if a is not None:
                a.state = AssignmentState.accepted if accept else AssignmentState.returned
                a.note, a.updated_at = (None if accept else note), now
                s.add(a)
            await s.flush()
            unit_name = await self.reads.unit_name(s, stored.unit_id)
            await self.kit.event(
                s,
                "file_accepted" if accept else "file_returned",
                run=run,
                actor_id=actor_id,
                run_step_id=rs.id,
                file_id=stored.id,
                unit=unit_name,
                version=stored.version,
                note=note,
            )
            kind = Settled.accepted if accept else Settled.returned
            # Every copy of the review message, the reviewer's own too, loses
            # its buttons and says who decided and when: that line is the
            # reviewer's answer (no separate confirmation).
            await self.messages.settle.retire_rows(
                s,
                run,
                rs,
                await self.messages.settle.review_messages(s, list(pages)),
                kind,
                actor_id=actor_id,
            )
            if a is not None:
                context = {
                    **step_context(run, sop, step, rs),
                    "unit_name": unit_name,
                    "name": stored.original_name,
                    "version": stored.version,
                    "note": note,
                    "by": got.member.name,
                    "pages": len(pages),
                    "actions": [] if accept else [upload_action(rs.id or 0, a.unit_id).as_dict()],
                }
                receipt = await self._receipt(s, stored) if accept else None
                for m in await self.reads.assignees(s, a):
                    # The sender learns of the acceptance under their receipt
                    # (nothing to do: no alert); a return, to act on, is new.
                    under = receipt is not None and m.id == receipt.member_id
                    await self.messages.notify(
                        s,
                        m.id or 0,
                        "receipt_accepted"
                        if under
                        else "file_accepted"
                        if accept
                        else "file_returned",
                        f"reviewed:{stored.id}:{m.id}",
                        context,
                        run=run,
                        run_step_id=rs.id,
                        assignment_id=a.id,
                        file_id=None if under else stored.id,
                        edits_id=receipt.id if under and receipt is not None else None,
                    )
                if accept:  # the unit's upload button has had its day
                    await self.messages.settle.retire_messages(
                        s, run, rs, kind, actor_id=actor_id, assignment_ids=[a.id or 0]
                    )
            validation = got.validation
            if accept and validation is not None and await self.reads.collection_settled(s, rs):
                v_step = sop.step(validation.step_key)
                await self.flow.finish_step(
                    s, run, sop, validation, actor_id, outcome="valid", next_key=v_step.next
                )
            else:
                # The last album was reviewed (from "Lihat berkas unit") before
                # it counted as complete: it will not be settled, so close here.
                await self.albums.close_if_complete(s, run, sop, rs)
            return stored

    async def _receipt(self, s: AsyncSession, stored: StoredFile) -> Notification | None:
        """The sender's receipt of this delivery, as its handler kept it."""
        keys = [receipt_key(stored.id or 0)]
        if stored.batch is not None:
            keys.append(album_receipt_key(stored.assignment_id or 0, stored.version))
        return (
            await s.exec(
                select(Notification).where(
                    col(Notification.key).in_(keys),
                    Notification.state == OutboxState.sent,
                )
            )
        ).first()

    # ------------------------------------------------------------------- close

    async def closable_units(
        self, actor_id: int, run_step_id: int
    ) -> tuple[Task, list[tuple[int, str]]]:
        """The units the reviewer may close on this step now, for the choice
        of one unit or all of them."""
        task = await self.rules.authorize(actor_id, run_step_id, purpose=Purpose.close)
        async with self.kit.db.session() as s:
            got = await self.rules.step_access(s, actor_id, run_step_id, Purpose.close, lock=False)
            target = await self.reads.collection_step(s, got.run, got.step, got.rs)
            return task, [
                (a.unit_id or 0, await self.reads.unit_name(s, a.unit_id) or "")
                for a in await self.reads.closable(s, got.step, target)
            ]

    async def close(
        self, actor_id: int, run_step_id: int, reason: str, *, unit_id: int | None = None
    ) -> Closure:
        """Close a unit that cannot deliver (`unit_id`), or every unit still
        owing; the reason is recorded per unit and its members are told. The
        collection (or its validation) is done once every unit has delivered
        or been closed."""
        async with self.kit.command() as s:
            got = await self.rules.step_access(s, actor_id, run_step_id, Purpose.close)
            run, rs, sop, step = got.run, got.rs, got.sop, got.step
            kept = check_note(reason, "required") or ""
            target = await self.reads.collection_step(s, run, step, rs)
            chosen = await self.reads.closable(s, step, target)
            if unit_id is not None:
                chosen = [a for a in chosen if a.unit_id == unit_id]
                if not chosen:
                    raise AlreadyDone()  # the unit delivered, or was closed, meanwhile
            now = self.kit.clock.now()
            context = step_context(run, sop, step, rs)
            closed = []
            for a in chosen:
                unit = await self.reads.unit_name(s, a.unit_id)
                closed.append(unit or "")
                a.state, a.updated_at = AssignmentState.closed, now
                a.closed_by, a.closed_at, a.close_reason = actor_id, now, kept
                s.add(a)
                await s.flush()
                await self.kit.event(
                    s,
                    "unit_closed",
                    run=run,
                    actor_id=actor_id,
                    run_step_id=rs.id,
                    assignment_id=a.id,
                    step=step.number,
                    unit=unit,
                    reason=kept,
                    by=got.member.name,
                )
                for m in await self.reads.assignees(s, a):
                    await self.messages.notify(
                        s,
                        m.id or 0,
                        "unit_closed",
                        f"unit_closed:{a.id}:{m.id}",
                        {**context, "unit_name": unit, "reason": kept, "by": got.member.name},
                        run=run,
                        run_step_id=rs.id,
                        assignment_id=a.id,
                    )
            # The closed units' task messages: their buttons cannot act any more.
            await self.messages.settle.retire_messages(
                s,
                run,
                rs,
                Settled.closed,
                actor_id=actor_id,
                assignment_ids=[a.id or 0 for a in chosen],
            )
            waiting = [
                await self.reads.unit_name(s, a.unit_id) or ""
                for a in await self.reads.closable(s, step, target)
            ]
            done = not waiting
            if done:
                await self.kit.event(
                    s,
                    "step_closed",
                    run=run,
                    actor_id=actor_id,
                    run_step_id=rs.id,
                    step=step.number,
                    reason=kept,
                    pending_units=closed,
                )
                await self.flow.finish_step(
                    s, run, sop, rs, actor_id, outcome="ditutup", note=kept, next_key=step.next
                )
            return Closure(rs, closed, done, waiting)
