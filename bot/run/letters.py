"""What a cover letter (`draft: letter`) means to its step beyond the file:
its number. The draft itself is made like any other (bot/run/drafts.py,
by bot/documents/letter.py `LetterDraft`, which draws the number in the
transaction that opens the step, once per step opening); this part is its
`DraftHook`: using the draft ends the step with the drawn number as its
note, and whichever way the step ends (the draft used, or Selesai with a
typed number after the sekretaris's own letter) the number goes on the run
(`Run.letter_number`), the drawn one is marked used or replaced (replaced
stays used up: bot/documents/numbering.py), and `letter_numbered` is
recorded.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.documents import numbering
from bot.models import Run, RunStep
from bot.run.kit import RunKit
from bot.sop import Step


class Letters:
    def __init__(self, kit: RunKit) -> None:
        self.kit = kit

    async def note_of_use(self, s: AsyncSession, rs: RunStep) -> str | None:
        """The letter's own number: the draft says it, so using the draft
        cannot give the step another."""
        row = await numbering.of_step(s, rs.id or 0)
        return row.text if row is not None else None

    async def finished(
        self,
        s: AsyncSession,
        run: Run,
        step: Step,
        rs: RunStep,
        actor_id: int,
        note: str | None,
        *,
        draft_used: bool,
    ) -> None:
        """The step is done with `note` as the letter's number (the drawn
        one, or one the sekretaris typed): it goes on the run, and the drawn
        number is marked used or replaced."""
        if not note:
            return
        written = " ".join(note.split())
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
            draft_used=draft_used,
        )
