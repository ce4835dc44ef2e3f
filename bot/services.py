"""Builds the domain objects from settings, once per process (or test)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar
from bot.clock import Clock, SystemClock
from bot.db import Database
from bot.deadlines import Deadlines
from bot.inbox import Inbox
from bot.members import Membership
from bot.office import OfficeConfig, load_office
from bot.outbox import Outbox
from bot.pending import Waiting
from bot.run import Engine
from bot.seal import Sealer
from bot.settings import Settings
from bot.sop import SopRegistry
from bot.storage import FileStorage
from bot.texts import Texts

log = logging.getLogger(__name__)


def register_documents(engine: Engine, office_name: str) -> None:
    """The makers of the documents the bot drafts for steps (`draft:` in the
    SOP file): the compiled workbook, the cover letter (its number kept by
    the engine's letter hook) and the run's archive, with the monev workbook
    of bot/report.py inside it."""
    from bot.documents.archive import RunArchive
    from bot.documents.compile import CompiledDraft
    from bot.documents.letter import LetterDraft
    from bot.report import run_report

    async def monev(s: AsyncSession, run_id: int) -> bytes:
        # The archive is made in the transaction that opens its step: the
        # monev must read that transaction's view (step 14 done, 15 open),
        # not what another connection sees committed.
        return await run_report(cast(Engine, _InSession(engine, s)), run_id, office_name)

    storage = engine.kit.storage
    engine.drafts.register("compiled", CompiledDraft(storage))
    engine.drafts.register("letter", LetterDraft(engine.kit, engine.reads.latest_files))
    engine.drafts.register("archive", RunArchive(storage, engine.calendar.tz, monev))


class _OneSession:
    def __init__(self, s: AsyncSession) -> None:
        self._s = s

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        yield self._s


class _InSession:
    """The engine as bot/report.py reads it, with `db.session()` giving the
    caller's open session: a read-only report made inside a transaction
    sees that transaction's changes."""

    def __init__(self, engine: Engine, s: AsyncSession) -> None:
        self._engine = engine
        self.db = _OneSession(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


@dataclass
class Services:
    settings: Settings
    db: Database
    sops: SopRegistry
    office: OfficeConfig
    calendar: WorkCalendar
    clock: Clock
    storage: FileStorage
    engine: Engine
    members: Membership
    texts: Texts
    waiting: Waiting
    inbox: Inbox
    deadlines: Deadlines
    outbox: Outbox
    seals: Sealer

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Services:
        clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        office = load_office(settings.office_file, settings.timezone)
        sops = SopRegistry.load(settings.sop_dir)
        office.check_roles(sops)
        calendar = WorkCalendar(office.calendar)
        db = Database(settings.db_url)
        storage = FileStorage(settings.files_dir)
        engine = Engine(
            db,
            sops,
            calendar,
            clock,
            storage,
            max_file_bytes=settings.download_limit_bytes,
            office=office,
        )
        register_documents(engine, office.name)
        members = Membership(
            db,
            sops,
            clock,
            on_enrolled=engine.deliver_open_tasks,
            admin_telegram_ids=settings.admin_telegram_ids,
        )
        texts = Texts(office.calendar.timezone, role_name=members.role_name)
        waiting = Waiting(db, clock)
        return cls(
            settings,
            db,
            sops,
            office,
            calendar,
            clock,
            storage,
            engine,
            members,
            texts,
            waiting,
            Inbox(db, clock),
            Deadlines(engine, office),
            Outbox(db, clock, calendar=calendar),
            Sealer.build(settings, db, clock, calendar),
        )

    async def start(self) -> None:
        """Check the schema is current and sync the office's units."""
        from bot.migrate import require_current

        await require_current(self.db)
        await self.members.sync_units(self.office.units)
        # Runs from before definitions were kept: store theirs while the file
        # still matches (see bot/definitions.py).
        await self.engine.definitions.record_existing(self.db)
        this_year = self.clock.now().astimezone(self.calendar.tz).year
        for year in self.calendar.years_without_joint_holidays([this_year, this_year + 1]):
            log.warning(
                "cuti bersama %s belum dikenal paket holidays: perbarui paketnya "
                "(pip install -U holidays) atau tulis tanggalnya di closed_dates berkas kantor",
                year,
            )

    async def close(self) -> None:
        await self.db.dispose()
