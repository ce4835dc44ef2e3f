"""The run engine, by composition: each module one job, each rule in one place.

    kit.py         what every part shares (db, SOPs, calendar, clock, storage;
                   recording an event; a run's own definition)
    reads.py       reads inside a caller's session (holders, assignees, steps)
    rules.py       who may act on what: the commands and the handlers'
                   pre-checks call the same functions
    actions.py     the buttons of a task, a review, an invitation
    messages.py    the messages a change implies, through the outbox's writer
    flow.py        opening and finishing steps and runs
    letters.py     a cover letter's number at its step's end (the letter draft's hook)
    runs.py        commands on a run: start, cancel, pause, move a due time
    steps.py       commands on a step: done, decide, meeting, attendance
    collection.py  files: upload, review, close units
    albums.py      albums as one delivery
    drafts.py      documents the bot drafts for a step (made by bot/documents/),
                   with a hook per kind that means more (the letter's number)
    delegation.py  handing a task to a colleague
    queries.py     tasks, status, a collection's files, the history

`Engine` only builds the parts and wires them together; callers use the part
that does what they need (`engine.steps.complete(...)`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.db import Database
from bot.definitions import Definitions
from bot.office import OfficeConfig
from bot.outbox import SentMessage
from bot.run.albums import Albums
from bot.run.collection import Collection
from bot.run.delegation import Delegation
from bot.run.drafts import Drafts
from bot.run.flow import Flow
from bot.run.kit import RunKit
from bot.run.letters import Letters
from bot.run.messages import Messages
from bot.run.queries import Queries
from bot.run.reads import Reads
from bot.run.rules import Rules
from bot.run.runs import RunCommands
from bot.run.steps import StepCommands
from bot.sop import SopRegistry
from bot.storage import FileStorage


class Engine:
    """The parts of the run engine, built once per process."""

    def __init__(
        self,
        db: Database,
        sops: SopRegistry,
        calendar: WorkCalendar,
        clock: Clock,
        storage: FileStorage,
        *,
        max_file_bytes: int | None = 20 * 1024 * 1024,
        office: OfficeConfig | None = None,
    ) -> None:
        self.kit = kit = RunKit(
            db, sops, calendar, clock, storage, max_file_bytes, office or OfficeConfig()
        )
        self.reads = reads = Reads(kit)
        self.rules = rules = Rules(kit, reads)
        # A cover letter is a draft whose number the letter's hook keeps.
        self.drafts = drafts = Drafts(kit, hooks={"letter": Letters(kit)})
        self.messages = messages = Messages(kit, reads, drafts)
        self.flow = flow = Flow(kit, reads, rules, messages, drafts)
        self.albums = albums = Albums(kit, reads, messages, flow)
        self.runs = RunCommands(kit, reads, rules, messages, flow)
        self.steps = StepCommands(kit, reads, rules, messages, flow, drafts)
        self.collection = Collection(kit, reads, rules, messages, flow, albums)
        self.delegation = Delegation(kit, reads, rules, messages)
        self.queries = Queries(kit, reads, rules)

    @property
    def db(self) -> Database:
        return self.kit.db

    @property
    def clock(self) -> Clock:
        return self.kit.clock

    @property
    def calendar(self) -> WorkCalendar:
        return self.kit.calendar

    @property
    def definitions(self) -> Definitions:
        return self.kit.definitions

    async def keep(self, messages: Sequence[SentMessage]) -> int:
        """Keep messages with buttons a handler sent itself, caught up with
        any settling they missed on their way (Settling.keep)."""
        return await self.messages.settle.keep(messages)

    async def deliver_open_tasks(self, s: AsyncSession, member_id: int) -> int:
        """For the enrolment (bot/members.py): a new member's open tasks."""
        return await self.flow.deliver_open_tasks(s, member_id)
