"""Albums: the pages of one delivery arrive as separate messages.

A unit's album is stored page by page as it comes and reviewed as a whole
once complete: ALBUM_QUIET after its last page (found by the deadline sweep
and its timer), or as soon as its sender moves on to another file. Until
then the collection cannot count that unit as delivered.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import (
    Assignment,
    Notification,
    ReviewState,
    Run,
    RunState,
    RunStep,
    StepState,
    StoredFile,
)
from bot.run.flow import Flow
from bot.run.kit import RunKit
from bot.run.messages import Messages
from bot.run.reads import Reads
from bot.sop import Action, Sop, Step

# The pages of an album arrive as separate updates, usually within a second;
# this long after the last one the album counts as complete.
ALBUM_QUIET = timedelta(seconds=5)


def album_marker(assignment_id: int, version: int) -> str:
    """The key of the sender's album notice, which also marks the album settled."""
    return f"album:{assignment_id}:{version}"


def receipt_key(file_id: int) -> str:
    """The key of the sender's receipt for one file (kept by the handler)."""
    return f"receipt:{file_id}"


def album_receipt_key(assignment_id: int, version: int) -> str:
    """The key of the sender's one receipt for an album (kept by the handler
    that sent it), which the completion notice edits."""
    return f"album_receipt:{assignment_id}:{version}"


class Albums:
    def __init__(self, kit: RunKit, reads: Reads, messages: Messages, flow: Flow) -> None:
        self.kit = kit
        self.reads = reads
        self.messages = messages
        self.flow = flow

    async def open_albums(
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
            marker = album_marker(*key)
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
                or (await self.kit.sop_of(s, run)).step(owner.step_key).action != Action.collect
            ):
                del groups[key]
        return groups

    async def close_if_complete(
        self,
        s: AsyncSession,
        run: Run,
        sop: Sop,
        rs: RunStep,
        *,
        settling: tuple[int, int] | None = None,
    ) -> bool:
        """Finish an open collection once every unit delivered (or was
        closed) and no album is still arriving (`settling`: the one being
        settled now). True when it finished."""
        if rs.state != StepState.open or not await self.reads.all_delivered(s, rs):
            return False
        if any(k != settling for k in await self.open_albums(s, rs)):
            return False
        step = sop.step(rs.step_key)
        await self.flow.finish_step(s, run, sop, rs, None, outcome="lengkap", next_key=step.next)
        return True

    async def album_due(self) -> datetime | None:
        """When the oldest album still arriving counts as complete."""
        async with self.kit.db.session() as s:
            albums = await self.open_albums(s)
        # One already due is the next sweep's (never a moment in the past,
        # which would fire the timer again at once).
        now = self.kit.clock.now()
        ends = [pages[-1].received_at + ALBUM_QUIET for pages in albums.values()]
        ends = [end for end in ends if end > now]
        return min(ends) if ends else None

    async def settle_albums(self, *, batch: str | None = None) -> int:
        """Settle every album complete by now (or whose sender moved on:
        `batch`): the reviewers get one review with every page, the sender
        is told how many pages were kept, and the collection closes if every
        unit is in. Returns how many albums were settled."""
        cutoff = self.kit.clock.now() - ALBUM_QUIET
        settled = 0
        # A plain transaction, not kit.command(): settling is the sweep's
        # work, done here on the way of an update that asked for something
        # else (the sender's next file), whose own command marks it done.
        async with self.kit.db.transaction() as s:
            for (assignment_id, _version), pages in (await self.open_albums(s)).items():
                if pages[-1].received_at > cutoff and pages[0].batch != batch:
                    continue
                run, rs = await self.reads.run_step(s, pages[0].run_step_id)
                sop = await self.kit.sop_of(s, run)
                a = await s.get(Assignment, assignment_id)
                if a is None:
                    continue
                await self._settle(s, run, sop, sop.step(rs.step_key), rs, a, pages)
                settled += 1
        return settled

    async def _settle(
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
        unit_name = await self.reads.unit_name(s, a.unit_id)
        await self.kit.event(
            s,
            "album_complete",
            run=run,
            actor_id=None,
            run_step_id=rs.id,
            unit=unit_name,
            version=first.version,
            files=[f.id for f in pages],
        )
        uploader = await self.reads.name_of(s, first.uploader_id) or ""
        context = await self.messages.ask_review(s, run, sop, step, rs, a, pages, uploader, [])
        closed = await self.close_if_complete(s, run, sop, rs, settling=(a.id or 0, first.version))
        # The notice to the sender also marks the album as settled. It is
        # written under the album's one receipt (an edit), when there is one.
        receipt = (
            await s.exec(
                select(Notification.id).where(
                    Notification.key == album_receipt_key(a.id or 0, first.version)
                )
            )
        ).first()
        await self.messages.notify(
            s,
            first.uploader_id or 0,  # an album always has its sender
            "album_received",
            album_marker(a.id or 0, first.version),
            {**context, "album": None, "actions": [], "closed": closed},
            run=run,
            run_step_id=rs.id,
            assignment_id=a.id,
            edits_id=receipt,
        )
