"""The cover letter of a step that drafts one (the SOP's `letter:` block):
its number drawn and its draft made as the step opens, and the number the
step finally carries recorded on the run.

Works inside the caller's transaction: the number is drawn in the same
transaction that opens the step (see bot/documents/numbering.py for why),
and the draft is written to storage before that transaction commits (a
crash in between leaves at most an unreferenced file, never a number
without its letter).
"""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.documents import numbering
from bot.documents.letter import (
    SentDocument,
    letter_fields,
    letter_name,
    render_letter,
    template_of,
)
from bot.models import LetterNumber, Run, RunStep
from bot.run.kit import RunKit
from bot.run.reads import Reads
from bot.sop import Sop, Step

log = logging.getLogger(__name__)


class Letters:
    def __init__(self, kit: RunKit, reads: Reads) -> None:
        self.kit = kit
        self.reads = reads

    async def prepare(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep
    ) -> LetterNumber | None:
        """Draw the letter's number and make its draft, once per step opening."""
        if step.letter is None:
            return None
        office = self.kit.office
        now = self.kit.clock.now()
        local = now.astimezone(self.kit.calendar.tz)
        row = await numbering.draw(
            s,
            office=office.name,
            template=office.letter.number_format,
            local=local,
            run_id=run.id or 0,
            run_step_id=rs.id or 0,
        )
        if row.draft_path is not None:
            return row
        documents = []
        for key in step.letter.documents_from or step.attach_from:
            files = await self.reads.latest_files(s, run, key)
            if files:
                pages: dict[tuple[int | None, int], list[str]] = {}
                for f in files:
                    pages.setdefault((f.assignment_id, f.version), []).append(f.original_name)
                documents = [
                    SentDocument(names[0], len(names), f"versi {version}" if version > 1 else "")
                    for (_, version), names in pages.items()
                ]
                break
        try:
            data = render_letter(
                template_of(office),
                letter_fields(
                    office,
                    step.letter,
                    number=row.text,
                    day=local.date(),
                    sop_name=sop.name,
                    run_title=run.title,
                    documents=documents,
                ),
            )
        except Exception as exc:
            # An office's own template that docxtpl cannot fill must not stop
            # the run: the step opens without a draft (the sekretaris writes
            # the letter as before) and the log and the admins' log say why.
            log.exception("cover letter template %s could not be filled", template_of(office))
            await self.kit.event(
                s,
                "letter_draft_failed",
                run=run,
                actor_id=None,
                run_step_id=rs.id,
                step=step.number,
                number=row.text,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            return row
        name = letter_name(row.number, row.year)
        saved = self.kit.storage.save(data, run_id=run.id or 0, original_name=name)
        row.draft_path, row.draft_name = saved.relative_path, name
        row.draft_sha256, row.draft_size = saved.sha256, saved.size
        s.add(row)
        await self.kit.event(
            s,
            "letter_number_drawn",
            run=run,
            actor_id=None,
            run_step_id=rs.id,
            step=step.number,
            number=row.text,
            year=row.year,
            sequence=row.number,
            draft_sha256=saved.sha256,
        )
        return row

    async def drawn(self, s: AsyncSession, rs: RunStep) -> LetterNumber | None:
        return await numbering.of_step(s, rs.id or 0)

    async def record(
        self,
        s: AsyncSession,
        run: Run,
        step: Step,
        rs: RunStep,
        written: str,
        actor_id: int,
        *,
        adopted: bool,
    ) -> None:
        """The step is done with `written` as the letter's number (the drawn
        one, or one the sekretaris typed): it goes on the run, and the drawn
        number is marked used or replaced (replaced stays used up)."""
        written = " ".join(written.split())
        run.letter_number = written
        s.add(run)
        row = await numbering.settle(s, rs.id or 0, written)
        await self.kit.event(
            s,
            "letter_numbered",
            run=run,
            actor_id=actor_id,
            run_step_id=rs.id,
            step=step.number,
            number=written,
            drawn=row.text if row is not None else None,
            state=row.state.value if row is not None else None,
            draft_used=adopted,
        )
