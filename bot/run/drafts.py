"""Documents the bot drafts for a step (the SOP file's `draft:`), made when
the step opens so its task carries them: the compiled workbook at step 8,
the cover letter with its number at step 13, the run's archive at step 15.

A draft is a file of the run like an upload, made by the bot (no uploader,
kind "draft"): the audit log records it, the archive finds it, and it is
never the step's output until its actor chooses it (`StepCommands.use_draft`);
sending another file instead works as before. The makers live outside the
engine (bot/documents/), registered by kind; the engine only records what
they made. They run inside the transaction that opens the step, because the
task that carries the draft is written there; their slow part runs in a
thread. A maker that fails leaves the step without a draft, never blocks it.

A kind of draft may mean more to its step than a file: the cover letter's
number is the step's note and goes on the run. That lives with the kind, in
a `DraftHook` (bot/run/letters.py), which the step commands call through
`note_of_use` and `finished` whichever way the step ends (the draft used,
or Selesai after the actor's own file or typed note).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Run, RunStep, StoredFile
from bot.run.kit import RunKit
from bot.sop import Sop, Step

log = logging.getLogger(__name__)

DRAFT = "draft"  # StoredFile.kind of a file the bot made
# What a bot may send as a document (Telegram's upload limit); a larger
# draft stays on the server and the task says how to fetch it.
SEND_LIMIT = 50 * 1024 * 1024


@dataclass(frozen=True)
class MadeDraft:
    """A maker's result: a finished file under the storage's temporary
    folder (moved into storage, not copied), its name, and what the event
    log should say about it."""

    path: Path
    name: str
    mime: str
    details: dict[str, Any] = field(default_factory=dict)


class DraftMaker(Protocol):
    async def __call__(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep
    ) -> MadeDraft | None: ...


class DraftHook(Protocol):
    """What a kind of draft adds to its step beyond the file."""

    async def note_of_use(self, s: AsyncSession, rs: RunStep) -> str | None:
        """The note the step ends with when its draft is used as it is (it
        wins over a typed one: it is what the draft says); the task shows it."""
        ...

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
        """The step ends with `note`, in the caller's transaction."""
        ...


class Drafts:
    def __init__(self, kit: RunKit, hooks: dict[str, DraftHook] | None = None) -> None:
        self.kit = kit
        self.makers: dict[str, DraftMaker] = {}
        self.hooks: dict[str, DraftHook] = dict(hooks or {})

    def register(self, kind: str, maker: DraftMaker) -> None:
        """The maker of a `draft:` kind (done once, by the wiring)."""
        self.makers[kind] = maker

    async def prepare(
        self, s: AsyncSession, run: Run, sop: Sop, step: Step, rs: RunStep
    ) -> StoredFile | None:
        """Make and record the step's draft, if it has one; inside the
        transaction that opens the step, before its tasks are written."""
        maker = self.makers.get(step.draft or "")
        if maker is None:
            return None
        try:
            made = await maker(s, run, sop, step, rs)
        except SQLAlchemyError:
            raise
        except Exception as exc:  # a help that failed: the step goes on without it
            log.exception("draft %s of run %s failed", step.draft, run.id)
            await self.kit.event(
                s,
                "draft_failed",
                run=run,
                actor_id=None,
                run_step_id=rs.id,
                step=step.number,
                draft=step.draft,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            return None
        if made is None:
            return None
        saved = await asyncio.to_thread(
            self.kit.storage.keep, made.path, run_id=run.id or 0, original_name=made.name
        )
        stored = StoredFile(
            run_id=run.id or 0,
            run_step_id=rs.id or 0,
            uploader_id=None,
            original_name=made.name,
            mime_type=made.mime,
            size=saved.size,
            sha256=saved.sha256,
            storage_path=saved.relative_path,
            kind=DRAFT,
            received_at=self.kit.clock.now(),
        )
        s.add(stored)
        await s.flush()
        await self.kit.event(
            s,
            "draft_made",
            run=run,
            actor_id=None,
            run_step_id=rs.id,
            file_id=stored.id,
            step=step.number,
            draft=step.draft,
            name=stored.original_name,
            size=stored.size,
            sha256=stored.sha256,
            path=stored.storage_path,
            **made.details,
        )
        return stored

    async def note_of_use(self, s: AsyncSession, step: Step, rs: RunStep) -> str | None:
        """The note using this step's draft gives it (None: the actor's own)."""
        hook = self.hooks.get(step.draft or "")
        return await hook.note_of_use(s, rs) if hook is not None else None

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
        """A step with a `draft:` ends (its draft used or not, or none made)."""
        hook = self.hooks.get(step.draft or "")
        if hook is not None:
            await hook.finished(s, run, step, rs, actor_id, note, draft_used=draft_used)


async def draft_of(s: AsyncSession, rs: RunStep) -> StoredFile | None:
    """The bot's draft for this opening of a step, if it made one."""
    return (
        await s.exec(
            select(StoredFile)
            .where(StoredFile.run_step_id == rs.id, StoredFile.kind == DRAFT)
            .order_by(col(StoredFile.id).desc())
        )
    ).first()
