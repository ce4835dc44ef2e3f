"""What every part of the run engine shares: the database, the SOPs, the
calendar, the clock, file storage and the office file, plus the two things
each command does the same way (record an event, find a run's own SOP
definition).

A plain object handed to each part (composition): no part inherits from
another, so a reader sees from a constructor what a module may touch.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import append_event
from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database
from bot.definitions import Definitions
from bot.inbox import command
from bot.models import Event, Run
from bot.office import OfficeConfig
from bot.sop import Sop, SopRegistry
from bot.storage import FileStorage


@dataclass
class RunKit:
    db: Database
    sops: SopRegistry
    calendar: WorkCalendar
    clock: Clock
    storage: FileStorage
    max_file_bytes: int | None = 20 * 1024 * 1024
    # The office file: its letterhead and letter numbering (bot/documents/letter.py).
    office: OfficeConfig = field(default_factory=OfficeConfig)
    definitions: Definitions = field(init=False)

    def __post_init__(self) -> None:
        self.definitions = Definitions(self.sops, self.clock)

    def command(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A command's one transaction: the update that asked for it (if
        any) is marked done in the same commit (bot/inbox.py)."""
        return command(self.db, self.clock)

    def first_late(self, due_at: datetime) -> datetime:
        """The first moment a step due at `due_at` counts as late: a working
        minute after it (a reminder at the due time would say "0 menit").
        The deadline sweep's first look at a step (RunStep.check_at)."""
        return self.calendar.add_working_minutes(due_at, 1)

    async def sop_of(self, s: AsyncSession, run: Run) -> Sop:
        """The definition this run started with, not necessarily the file's."""
        return await self.definitions.for_run(s, run)

    async def event(
        self, s: AsyncSession, kind: str, *, run: Run | None, actor_id: int | None, **details: Any
    ) -> Event:
        """Append to the hash-chained log, stamped by the one clock."""
        return await append_event(
            s,
            kind,
            at=self.clock.now(),
            run_id=run.id if run else None,
            actor_id=actor_id,
            details=details,
        )
