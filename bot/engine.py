"""The run state machine.

One public method is one command and one database transaction: it checks that
the acting member may act now, changes state, appends events to the chain and
writes the notifications it implies to the outbox. Nothing here knows about
Telegram; callers pass member ids and plain values.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import (
    AlreadyDone,
    DelegateRefused,
    FileRejected,
    FilesRequired,
    InvalidInput,
    NotAllowed,
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
    Notification,
    ReviewState,
    Run,
    RunState,
    RunStep,
    StepState,
    StoredFile,
)
from bot.queries import RunQueries
from bot.sop import Action, Sop, Step
from bot.storage import SavedFile, extension_of, photo_name
from bot.transitions import upload_action
from bot.views import (
    ADMIN,
    MAX_TITLE,
    OWING,
    Closure,
    IncomingFile,
    Receipt,
    TaskAction,
    iso,
)
from bot.workbook import WORKBOOK_EXTENSIONS, BrokenWorkbook, inspect_workbook

# The pages of an album arrive as separate updates, usually within a second;
# this long after the last one the album counts as complete.
ALBUM_QUIET = timedelta(seconds=5)


class Engine(RunQueries):
    """Commands over runs; construct once per process."""

    # ----------------------------------------------------------------- commands

    async def start_run(
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
        if sop_key is None:
            sop = self.sops.all()[0]
        elif sop_key in self.sops:
            sop = self.sops.get(sop_key)
        else:
            raise NotFound("sop", sop_key=sop_key)
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            roles = {r.role for r in await self._roles(s, actor_id)}
            first = sop.first
            if not (roles & (set(first.actors) | {ADMIN})):
                raise NotAllowed(roles=[*first.actors, ADMIN])
            note = self._check_note(note, "optional")
            if request_key is not None:
                earlier = (await s.exec(select(Run).where(Run.request_key == request_key))).first()
                if earlier is not None:
                    return earlier
            now = self.clock.now()
            run = Run(
                sop_key=sop.key,
                sop_version=await self.definitions.remember(s, sop),
                title=title,
                started_at=now,
                started_by=actor_id,
                request_key=request_key,
            )
            s.add(run)
            await s.flush()
            for step in sop.steps:
                s.add(RunStep(run_id=run.id or 0, step_key=step.key, number=step.number))
            await s.flush()
            await self._event(
                s,
                "run_started",
                run=run,
                actor_id=actor_id,
                title=title,
                sop=sop.key,
                sop_version=run.sop_version,
            )
            acts_first = (
                bool(roles & set(first.actors))
                and first.action == Action.confirm
                and first.files != "required"
            )
            rs = await self._open_step(
                s,
                run,
                sop,
                first.key,
                reason="silent" if acts_first else "opened",
                actor_id=actor_id,
            )
            if acts_first:
                await self._finish_step(s, run, sop, rs, actor_id, outcome="done", note=note)
            return run

    async def complete(self, actor_id: int, run_step_id: int, note: str | None = None) -> RunStep:
        """Selesai: finish a confirm, distribute, validate or meeting step."""
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = await self._sop(s, run)
            step = sop.step(rs.step_key)
            self._require_open(rs)
            a = await self._assignment_for(s, actor_id, rs)
            if step.action == Action.decide:
                raise InvalidInput("choose_outcome")
            if step.action == Action.collect:
                raise InvalidInput("upload_expected")
            if step.action == Action.meeting:
                raise InvalidInput("meeting_expected")
            if step.action == Action.validate:
                raise InvalidInput("review_expected")
            meeting = await self._meeting_of(s, run, step)
            if meeting is not None and self.clock.now() < meeting.starts_at:
                raise StepNotOpen("meeting_not_started", starts_at=iso(meeting.starts_at))
            note = self._check_note(note, step.note, step.note_prompt)
            if step.files == "required":
                count = (
                    await s.exec(
                        select(func.count())
                        .select_from(StoredFile)
                        .where(StoredFile.run_step_id == rs.id)
                    )
                ).one()
                if not count:
                    raise FilesRequired()
            if step.action == Action.distribute:
                await self._distribute(s, run, sop, step, rs, actor_id)
            a.state, a.updated_at = AssignmentState.done, self.clock.now()
            s.add(a)
            await self._finish_step(s, run, sop, rs, actor_id, outcome="done", note=note)
            return rs

    def _require_open(self, rs: RunStep) -> None:
        if rs.state in (StepState.done, StepState.returned, StepState.skipped):
            raise AlreadyDone()
        if rs.state != StepState.open:
            raise StepNotOpen()

    async def _distribute(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep, actor_id: int
    ) -> None:
        files = await self._latest_files(s, run, step.files_from or "")
        if not files:
            raise FilesRequired()
        recipients: dict[int, Member] = {}
        for role in step.to_roles:
            for m in await self._holders(s, role):
                recipients[m.id or 0] = m
        context = self._step_context(run, sop, step, rs)
        for member in recipients.values():
            for f in files:
                await self._notify(
                    s,
                    member.id or 0,
                    "distributed",
                    f"dist:{rs.id}:{member.id}:{f.id}",
                    {**context, "name": f.original_name, "version": f.version},
                    run=run,
                    run_step_id=rs.id,
                    file_id=f.id,
                )
        await self._event(
            s,
            "distributed",
            run=run,
            actor_id=actor_id,
            run_step_id=rs.id,
            files=[f.id for f in files],
            recipients=len(recipients),
            roles=step.to_roles,
        )

    async def decide(
        self, actor_id: int, run_step_id: int, outcome: str | int, note: str | None = None
    ) -> RunStep:
        """Choose one of a decision step's outcomes; the outcome picks the next step."""
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = await self._sop(s, run)
            step = sop.step(rs.step_key)
            self._require_open(rs)
            a = await self._assignment_for(s, actor_id, rs)
            if step.action != Action.decide:
                raise InvalidInput("not_a_decision")
            if isinstance(outcome, int):
                chosen = step.outcomes[outcome] if 0 <= outcome < len(step.outcomes) else None
            else:
                chosen = step.outcome(outcome)
            if chosen is None:
                raise InvalidInput("unknown_outcome")
            note = self._check_note(note, chosen.note, chosen.note_prompt)
            a.state, a.updated_at = AssignmentState.done, self.clock.now()
            s.add(a)
            await self._event(
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
            actor = await self._member(s, actor_id)
            for role in chosen.notify:
                for m in await self._holders(s, role):
                    await self._notify(
                        s,
                        m.id or 0,
                        "decision",
                        f"decision:{rs.id}:{m.id}",
                        {
                            **self._step_context(run, sop, step, rs),
                            "label": chosen.label,
                            "note": note,
                            "by": actor.name,
                        },
                        run=run,
                        run_step_id=rs.id,
                    )
            state = StepState.returned if chosen.marks == "returned" else StepState.done
            await self._finish_step(
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
            return rs

    def _check_workbook(
        self, step: Step, incoming: IncomingFile, unit_name: str | None = None
    ) -> list[dict[str, Any]]:
        """Mistakes found in a unit's workbook; a broken one is refused."""
        if step.workbook is None or extension_of(incoming.original_name) not in WORKBOOK_EXTENSIONS:
            return []
        try:
            return inspect_workbook(incoming.data, step.workbook, unit_name)
        except BrokenWorkbook as exc:
            raise FileRejected("broken") from exc

    def check_file_size(self, size: int) -> str:
        if size <= 0:
            return "empty"
        if self.max_file_bytes is not None and size > self.max_file_bytes:
            return "too_big"
        return ""

    def check_file(self, step: Step, name: str, mime: str, kind: str, size: int) -> str:
        """Why a file cannot be taken for this step ('' when it can);
        callers use it before downloading, the engine again before storing."""
        reason = self.check_file_size(size)
        if reason:
            return reason
        ext = "jpg" if kind == "photo" else extension_of(name)
        if ext not in step.accept:
            return "type"
        return ""

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
        async with self.db.session() as s:
            _, run, rs, sop, step, a = await self._upload_target(s, actor_id, run_step_id, unit_id)
            unit_for_check = await self._unit_name(s, a.unit_id)
        reason = self.check_file(
            step, incoming.original_name, incoming.mime_type, incoming.kind, incoming.size
        )
        if reason:
            raise FileRejected(
                reason, accept=step.accept, limit_mb=(self.max_file_bytes or 0) // (1024 * 1024)
            )
        checks = await asyncio.to_thread(self._check_workbook, step, incoming, unit_for_check)
        # Stored under a name the bot makes; only the extension is the sender's.
        saved = await asyncio.to_thread(
            self.storage.save,
            incoming.data,
            run_id=run.id or 0,
            original_name=incoming.original_name,
        )
        try:
            return await self._record_upload(
                actor_id, run_step_id, unit_id, incoming, saved, checks
            )
        except BaseException:
            await asyncio.to_thread(self.storage.path(saved.relative_path).unlink, True)
            raise

    async def _upload_target(
        self, s: AsyncSession, actor_id: int, run_step_id: int, unit_id: int | None
    ) -> tuple[Member, Run, RunStep, Sop, Step, Assignment]:
        """Whether this member may send a file to this step now, and for which
        assignment; raises the refusal otherwise."""
        member = await self._member(s, actor_id)
        run, rs = await self._run_step(s, run_step_id)
        sop = await self._sop(s, run)
        step = sop.step(rs.step_key)
        if step.action == Action.collect:
            if rs.state != StepState.open and not await self._collection_live(s, run, sop, rs):
                self._require_open(rs)
        else:
            self._require_open(rs)
            if step.files == "none":
                raise InvalidInput("no_files_here")
        a = await self._assignment_for(s, actor_id, rs, unit_id)
        if a.state == AssignmentState.accepted:
            raise AlreadyDone("accepted")
        if a.state == AssignmentState.closed:
            raise await self._closed_refusal(s, run, a)
        return member, run, rs, sop, step, a

    async def _record_upload(
        self,
        actor_id: int,
        run_step_id: int,
        unit_id: int | None,
        incoming: IncomingFile,
        saved: SavedFile,
        checks: list[dict[str, Any]],
    ) -> Receipt:
        async with self.db.transaction() as s:
            member, run, rs, sop, step, a = await self._upload_target(
                s, actor_id, run_step_id, unit_id
            )
            previous = (
                await s.exec(
                    select(StoredFile)
                    .where(StoredFile.run_step_id == rs.id, StoredFile.assignment_id == a.id)
                    .order_by(col(StoredFile.version).desc(), col(StoredFile.id).desc())
                )
            ).all()
            same_batch = bool(
                previous
                and incoming.batch
                and previous[0].batch == incoming.batch
                and previous[0].review_state == ReviewState.received
            )
            version = 1
            if previous:
                version = previous[0].version if same_batch else previous[0].version + 1
            name = incoming.original_name[:255] or "berkas"
            if incoming.kind == "photo":
                # Named after the unit (or step) and page; what it was sent as stays on record.
                page = 1 + sum(1 for f in previous if f.version == version and same_batch)
                owner = await self._unit_name(s, a.unit_id) or f"langkah {step.number}"
                name = photo_name(owner, version, page)
            if previous and not same_batch and not incoming.batch:
                current = [f for f in previous if f.version == previous[0].version]
                if (
                    len(current) == 1
                    and current[0].sha256 == saved.sha256
                    and current[0].review_state == ReviewState.received
                ):
                    # The same bytes again: nothing new to keep or to review.
                    await asyncio.to_thread(self.storage.path(saved.relative_path).unlink, True)
                    await self._event(
                        s,
                        "file_resent",
                        run=run,
                        actor_id=actor_id,
                        run_step_id=rs.id,
                        file_id=current[0].id,
                        unit=await self._unit_name(s, a.unit_id),
                        version=current[0].version,
                        sha256=saved.sha256,
                    )
                    return Receipt(
                        current[0],
                        run.title,
                        step.number,
                        await self._unit_name(s, a.unit_id),
                        False,
                        duplicate=True,
                    )
            replaced: list[StoredFile] = []
            if step.action == Action.collect and not same_batch:
                for old in previous:
                    if old.review_state == ReviewState.received:
                        old.review_state = ReviewState.superseded
                        s.add(old)
                        replaced.append(old)
            # The replaced version's review messages: their buttons would act on an old file.
            await self._retire_rows(
                s,
                run,
                rs,
                await self._review_messages(s, replaced),
                "superseded",
                actor_id=actor_id,
            )
            now = self.clock.now()
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
            unit_name = await self._unit_name(s, a.unit_id)
            await self._event(
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
                    page = len(await self._album_pages(s, stored))
                reviewer = step.reviewer
                if reviewer and page is None:
                    context = {
                        **self._step_context(run, sop, step, rs),
                        "unit_name": unit_name,
                        "name": stored.original_name,
                        "size": stored.size,
                        "version": stored.version,
                        "by": member.name,
                        "sha256": stored.sha256,
                        "file_id": stored.id,
                        "checks": checks,
                        "actions": [
                            TaskAction("acc", (stored.id or 0,)).as_dict(),
                            TaskAction("ret", (stored.id or 0,)).as_dict(),
                        ],
                    }
                    for m in await self._holders(s, reviewer):
                        await self._notify(
                            s,
                            m.id or 0,
                            "file_for_review",
                            f"review:{a.id}:{version}:{m.id}",
                            context,
                            run=run,
                            run_step_id=rs.id,
                            file_id=stored.id,
                        )
                if (
                    page is None
                    and rs.state == StepState.open
                    and await self._all_delivered(s, rs)
                    and not await self._open_albums(s, rs)
                ):
                    await self._finish_step(s, run, sop, rs, None, outcome="lengkap", note=None)
                    closed = True
            return Receipt(
                stored,
                run.title,
                step.number,
                unit_name,
                closed,
                checks,
                page=page,
            )

    # ------------------------------------------------------------------ albums

    async def _open_albums(
        self, s: AsyncSession, rs: RunStep | None = None
    ) -> dict[tuple[int, int], list[StoredFile]]:
        """Albums received for review whose completion was not yet settled
        (the uploader's album_received notice marks it), by (assignment, version)."""
        query = (
            select(StoredFile)
            .where(
                col(StoredFile.batch).is_not(None),
                col(StoredFile.assignment_id).is_not(None),
                StoredFile.review_state == ReviewState.received,
            )
            .order_by(col(StoredFile.id))
        )
        if rs is not None:
            query = query.where(StoredFile.run_step_id == rs.id)
        groups: dict[tuple[int, int], list[StoredFile]] = {}
        for f in (await s.exec(query)).all():
            groups.setdefault((f.assignment_id or 0, f.version), []).append(f)
        for key, pages in list(groups.items()):
            marker = f"album:{key[0]}:{key[1]}"
            if (await s.exec(select(Notification.id).where(Notification.key == marker))).first():
                del groups[key]
                continue
            # Only a unit's delivery in a running collection is reviewed.
            run = await s.get(Run, pages[0].run_id)
            owner = await s.get(RunStep, pages[0].run_step_id)
            if (
                run is None
                or owner is None
                or run.state != RunState.open
                or (await self._sop(s, run)).step(owner.step_key).action != Action.collect
            ):
                del groups[key]
        return groups

    async def album_due(self) -> datetime | None:
        """When the oldest album still arriving counts as complete."""
        async with self.db.session() as s:
            albums = await self._open_albums(s)
        # One already due is the next sweep's (never a moment in the past,
        # which would fire the timer again at once).
        now = self.clock.now()
        ends = [pages[-1].received_at + ALBUM_QUIET for pages in albums.values()]
        ends = [end for end in ends if end > now]
        return min(ends) if ends else None

    async def settle_albums(self, *, batch: str | None = None) -> int:
        """An album's pages arrive as separate messages. Once the last has come
        (ALBUM_QUIET passed since it, or the sender moved on: `batch`), the
        album is one delivery: the reviewers get one review with every page,
        the sender is told how many pages were kept, and the collection
        closes if every unit is in. Returns how many albums were settled."""
        cutoff = self.clock.now() - ALBUM_QUIET
        settled = 0
        async with self.db.transaction() as s:
            for (assignment_id, _version), pages in (await self._open_albums(s)).items():
                if pages[-1].received_at > cutoff and pages[0].batch != batch:
                    continue
                run, rs = await self._run_step(s, pages[0].run_step_id)
                sop = await self._sop(s, run)
                step = sop.step(rs.step_key)
                a = await s.get(Assignment, assignment_id)
                if a is None:
                    continue
                await self._settle_album(s, run, sop, step, rs, a, pages)
                settled += 1
        return settled

    async def _settle_album(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        step: Step,
        rs: RunStep,
        a: Assignment,
        pages: list[StoredFile],
    ) -> None:
        first = pages[0]
        unit_name = await self._unit_name(s, a.unit_id)
        uploader = await s.get(Member, first.uploader_id)
        await self._event(
            s,
            "album_complete",
            run=run,
            actor_id=None,
            run_step_id=rs.id,
            unit=unit_name,
            version=first.version,
            files=[f.id for f in pages],
        )
        context = {
            **self._step_context(run, sop, step, rs),
            "unit_name": unit_name,
            "name": first.original_name,
            "pages": len(pages),
            "album": [f.id for f in pages],
            "size": sum(f.size for f in pages),
            "version": first.version,
            "by": uploader.name if uploader else "",
            "sha256": first.sha256,
            "file_id": first.id,
            "checks": [],
            "actions": [
                TaskAction("acc", (first.id or 0,)).as_dict(),
                TaskAction("ret", (first.id or 0,)).as_dict(),
            ],
        }
        if step.reviewer:
            for m in await self._holders(s, step.reviewer):
                await self._notify(
                    s,
                    m.id or 0,
                    "file_for_review",
                    f"review:{a.id}:{first.version}:{m.id}",
                    context,
                    run=run,
                    run_step_id=rs.id,
                    file_id=first.id,
                )
        others = [k for k in await self._open_albums(s, rs) if k != (a.id, first.version)]
        closed = False
        if rs.state == StepState.open and not others and await self._all_delivered(s, rs):
            await self._finish_step(s, run, sop, rs, None, outcome="lengkap", note=None)
            closed = True
        # The notice to the sender also marks the album as settled.
        await self._notify(
            s,
            first.uploader_id,
            "album_received",
            f"album:{a.id}:{first.version}",
            {**context, "album": None, "actions": [], "closed": closed},
            run=run,
            run_step_id=rs.id,
            assignment_id=a.id,
        )

    async def _all_delivered(self, s: AsyncSession, rs: RunStep) -> bool:
        assignments = (
            await s.exec(select(Assignment).where(Assignment.run_step_id == rs.id))
        ).all()
        return all(a.state not in OWING for a in assignments)

    async def _collection_live(
        self, s: AsyncSession, run: Run, sop: Sop, collect_rs: RunStep
    ) -> bool:
        """A closed collection still takes re-uploads while its validation is open."""
        for step in sop.steps:
            if step.action == Action.validate and step.collection == collect_rs.step_key:
                v = await self._latest_step(s, run, step.key)
                if v is not None and v.state == StepState.open:
                    return True
        return False

    async def _validation_for(
        self, s: AsyncSession, run: Run, sop: Sop, collect_key: str
    ) -> RunStep | None:
        for step in sop.steps:
            if step.action == Action.validate and step.collection == collect_key:
                v = await self._latest_step(s, run, step.key)
                if v is not None and v.state == StepState.open:
                    return v
        return None

    async def review(
        self, actor_id: int, file_id: int, *, accept: bool, note: str | None = None
    ) -> StoredFile:
        """Accept a unit's file, or return it with a note for a new upload."""
        async with self.db.transaction() as s:
            reviewer = await self._member(s, actor_id)
            stored = await s.get(StoredFile, file_id)
            if stored is None:
                raise NotFound("file")
            run, rs = await self._run_step(s, stored.run_step_id)
            await s.refresh(stored)
            sop = await self._sop(s, run)
            step = sop.step(rs.step_key)
            if step.action != Action.collect or not step.reviewer:
                raise InvalidInput("not_reviewable")
            roles = {r.role for r in await self._roles(s, actor_id)}
            validation = await self._validation_for(s, run, sop, step.key)
            if step.reviewer not in roles:
                raise NotAllowed(roles=[step.reviewer])
            if rs.state != StepState.open and validation is None:
                raise (
                    AlreadyDone()
                    if rs.state in (StepState.done, StepState.returned)
                    else StepNotOpen()
                )
            await self._require_unreviewed(s, stored)
            if not accept:
                note = self._check_note(note, "required")
            now = self.clock.now()
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
            unit_name = await self._unit_name(s, stored.unit_id)
            await self._event(
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
            context = {
                **self._step_context(run, sop, step, rs),
                "unit_name": unit_name,
                "name": stored.original_name,
                "version": stored.version,
                "note": note,
                "by": reviewer.name,
                "pages": len(pages),
            }
            # The other planners' copies of the review message lose their buttons.
            await self._retire_rows(
                s,
                run,
                rs,
                await self._review_messages(s, list(pages)),
                "accepted" if accept else "returned",
                actor_id=actor_id,
                skip_member=actor_id,
            )
            if a is not None:
                for m in await self._assignees(s, a):
                    await self._notify(
                        s,
                        m.id or 0,
                        "file_accepted" if accept else "file_returned",
                        f"reviewed:{stored.id}:{m.id}",
                        {
                            **context,
                            "actions": []
                            if accept
                            else [upload_action(rs.id or 0, a.unit_id).as_dict()],
                        },
                        run=run,
                        run_step_id=rs.id,
                        assignment_id=a.id,
                        file_id=stored.id,
                    )
                if accept:  # the unit's upload button has had its day
                    await self._retire_messages(
                        s, run, rs, "accepted", actor_id=actor_id, assignment_ids=[a.id or 0]
                    )
            if accept and validation is not None and await self._collection_settled(s, rs):
                await self._finish_step(
                    s, run, sop, validation, actor_id, outcome="valid", note=None
                )
            elif (
                rs.state == StepState.open
                and await self._all_delivered(s, rs)
                and not await self._open_albums(s, rs)
            ):
                # The last album was reviewed (from "Lihat berkas unit") before
                # it counted as complete: it will not be settled, so close here.
                await self._finish_step(s, run, sop, rs, None, outcome="lengkap", note=None)
            return stored

    async def close_step(
        self, actor_id: int, run_step_id: int, reason: str, *, unit_id: int | None = None
    ) -> Closure:
        """Close a unit that cannot deliver (`unit_id`), or every unit still
        owing; the reason is recorded per unit and its members are told. The
        collection (or its validation) is done once every unit has delivered
        or been closed."""
        async with self.db.transaction() as s:
            actor = await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = await self._sop(s, run)
            step = sop.step(rs.step_key)
            self._require_open(rs)
            roles = {r.role for r in await self._roles(s, actor_id)}
            if step.action == Action.collect:
                allowed = {step.reviewer} if step.reviewer else set()
            elif step.action == Action.validate:
                allowed = set(step.actors)
            else:
                raise InvalidInput("not_closable")
            if not roles & allowed:
                raise NotAllowed(roles=sorted(r for r in allowed if r))
            reason = self._check_note(reason, "required")
            target = rs
            if step.action == Action.validate:
                target = await self._latest_step(s, run, step.collection or "") or rs
            chosen = await self._closable(s, step, target)
            if unit_id is not None:
                chosen = [a for a in chosen if a.unit_id == unit_id]
                if not chosen:
                    raise AlreadyDone()  # the unit delivered, or was closed, meanwhile
            now = self.clock.now()
            context = self._step_context(run, sop, step, rs)
            closed = []
            for a in chosen:
                unit = await self._unit_name(s, a.unit_id)
                closed.append(unit or "")
                a.state, a.note, a.updated_at = AssignmentState.closed, reason, now
                s.add(a)
                await s.flush()
                await self._event(
                    s,
                    "unit_closed",
                    run=run,
                    actor_id=actor_id,
                    run_step_id=rs.id,
                    assignment_id=a.id,
                    step=step.number,
                    unit=unit,
                    reason=reason,
                    by=actor.name,
                )
                for m in await self._assignees(s, a):
                    await self._notify(
                        s,
                        m.id or 0,
                        "unit_closed",
                        f"unit_closed:{a.id}:{m.id}",
                        {**context, "unit_name": unit, "reason": reason, "by": actor.name},
                        run=run,
                        run_step_id=rs.id,
                        assignment_id=a.id,
                    )
            waiting = [
                await self._unit_name(s, a.unit_id) or ""
                for a in await self._closable(s, step, target)
            ]
            done = not waiting
            if done:
                await self._event(
                    s,
                    "step_closed",
                    run=run,
                    actor_id=actor_id,
                    run_step_id=rs.id,
                    step=step.number,
                    reason=reason,
                    pending_units=closed,
                )
                await self._finish_step(s, run, sop, rs, actor_id, outcome="ditutup", note=reason)
            return Closure(rs, closed, done, waiting)

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
        async with self.db.transaction() as s:
            organiser = await self._member(s, actor_id)
            run, rs = await self._run_step(s, run_step_id)
            sop = await self._sop(s, run)
            step = sop.step(rs.step_key)
            self._require_open(rs)
            a = await self._assignment_for(s, actor_id, rs)
            if step.action != Action.meeting:
                raise InvalidInput("not_a_meeting")
            place = " ".join((place or "").split())
            if not place or len(place) > 200:
                raise InvalidInput("place_missing")
            if starts_at.tzinfo is None:
                raise InvalidInput("time_missing")
            if starts_at < self.clock.now():
                raise InvalidInput("time_past")
            odd = self.calendar.outside_hours(starts_at)
            if odd is not None and not outside_hours_ok:
                raise OutsideOfficeHours(starts_at=iso(starts_at), place=place, **odd)
            meeting = Meeting(
                run_step_id=rs.id or 0, starts_at=starts_at, place=place, created_by=actor_id
            )
            s.add(meeting)
            await s.flush()
            invitees: dict[int, Member] = {}
            for role in step.invitees:
                for m in await self._holders(s, role):
                    invitees[m.id or 0] = m
            invitees.pop(actor_id, None)
            context = {
                **self._step_context(run, sop, step, rs),
                "meeting_id": meeting.id,
                "starts_at": iso(starts_at),
                "place": place,
                "by": organiser.name,
                "actions": [
                    TaskAction("rsvp", (meeting.id or 0, 1)).as_dict(),
                    TaskAction("rsvp", (meeting.id or 0, 0)).as_dict(),
                ],
            }
            for m in invitees.values():
                await self._notify(
                    s,
                    m.id or 0,
                    "meeting_invitation",
                    f"meeting:{meeting.id}:{m.id}",
                    context,
                    run=run,
                    run_step_id=rs.id,
                )
            await self._event(
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
            a.state = AssignmentState.done
            s.add(a)
            local = starts_at.astimezone(self.calendar.tz).strftime("%d-%m-%Y %H:%M")
            await self._finish_step(
                s, run, sop, rs, actor_id, outcome="diundang", note=f"Rapat {local}, {place}"
            )
            return meeting

    async def answer_meeting(self, actor_id: int, meeting_id: int, attending: bool) -> Attendance:
        """Hadir / Tidak hadir; a changed answer is recorded as a new event."""
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            meeting = await s.get(Meeting, meeting_id)
            if meeting is None:
                raise NotFound("meeting")
            run, rs = await self._run_step(s, meeting.run_step_id)
            step = (await self._sop(s, run)).step(rs.step_key)
            roles = {r.role for r in await self._roles(s, actor_id)}
            if not roles & set(step.invitees):
                raise NotAllowed(roles=step.invitees)
            now = self.clock.now()
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
            await self._event(
                s,
                "attendance",
                run=run,
                actor_id=actor_id,
                meeting_id=meeting_id,
                attending=attending,
            )
            return existing

    async def reassign(self, actor_id: int, assignment_id: int, to_member_id: int) -> Assignment:
        """Delegate an assignment to another member; both names are recorded."""
        async with self.db.transaction() as s:
            actor = await self._member(s, actor_id)
            a = await s.get(Assignment, assignment_id)
            if a is None:
                raise NotFound("assignment")
            run, rs = await self._run_step(s, a.run_step_id)
            await s.refresh(a)
            sop = await self._sop(s, run)
            step = sop.step(rs.step_key)
            if rs.state != StepState.open or a.state not in OWING:
                raise AlreadyDone()
            roles = {r.role for r in await self._roles(s, actor_id)}
            if not (ADMIN in roles or await self._may_act(s, actor_id, a)):
                await self._refuse_if_delegated(s, actor_id, [a])
                raise NotAllowed(roles=[a.role, ADMIN])
            target = await s.get(Member, to_member_id)
            if target is None or not target.active:
                raise NotFound("member")
            if a.member_id == to_member_id:
                raise AlreadyDone()
            if not await self._could_hold(s, to_member_id, a):
                # Only a colleague of the same role (and unit) may take it over.
                raise DelegateRefused(
                    name=target.name,
                    role=sop.roles[a.role].name if a.role in sop.roles else a.role,
                    unit=await self._unit_name(s, a.unit_id),
                )
            # Who held it before: the delegate before, else the role's holders.
            before = [m.name for m in await self._assignees(s, a) if m.id != to_member_id]
            await self._retire_messages(
                s,
                run,
                rs,
                "delegated",
                actor_id=actor_id,
                assignment_ids=[a.id or 0],
                skip_member=to_member_id,
                to=target.name,
            )
            a.member_id, a.delegated_by, a.updated_at = to_member_id, actor_id, self.clock.now()
            s.add(a)
            await s.flush()
            await self._event(
                s,
                "reassigned",
                run=run,
                actor_id=actor_id,
                assignment_id=a.id,
                run_step_id=rs.id,
                step=step.number,
                by=actor.name,
                from_members=before,
                to_member=target.name,
            )
            await self._send_task(
                s, run, sop, step, rs, a, target, reason=f"delegated{a.id}-{to_member_id}"
            )
            return a

    async def cancel_run(self, actor_id: int, run_id: int, reason: str) -> Run:
        async with self.db.transaction() as s:
            await self._member(s, actor_id)
            run = await self._lock_run(s, run_id)
            sop = await self._sop(s, run)
            roles = {r.role for r in await self._roles(s, actor_id)}
            if not roles & (set(sop.first.actors) | {ADMIN}):
                raise NotAllowed(roles=[*sop.first.actors, ADMIN])
            reason = self._check_note(reason, "required")
            now = self.clock.now()
            involved = await self._involved(s, run)
            run.state, run.ended_at, run.cancel_reason = RunState.cancelled, now, reason
            s.add(run)
            # Every button of the run goes, also a unit's on a closed collection.
            for rs in (await s.exec(select(RunStep).where(RunStep.run_id == run.id))).all():
                await self._retire_messages(s, run, rs, "cancelled", actor_id=actor_id, every=True)
            for rs in (
                await s.exec(
                    select(RunStep).where(
                        RunStep.run_id == run.id,
                        col(RunStep.state).in_([StepState.open, StepState.waiting]),
                    )
                )
            ).all():
                rs.state = StepState.skipped
                s.add(rs)
            await s.flush()
            await self._event(s, "run_cancelled", run=run, actor_id=actor_id, reason=reason)
            for member_id in involved:
                if member_id == actor_id:
                    continue  # the one who cancels is answered at once
                await self._notify(
                    s,
                    member_id,
                    "run_cancelled",
                    f"run_cancelled:{run.id}:{member_id}",
                    {"run_title": run.title, "reason": reason},
                    run=run,
                )
            return run
