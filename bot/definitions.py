"""The SOP definition each run started with, kept with the runs.

The YAML file is data an office may edit while runs are open: rename or
remove a step, change an action or a waktu. A run keeps the rules it started
under, so its steps still resolve and an audit can reconstruct them; only new
runs take the edited file. One SopDefinition row per distinct definition,
keyed by its fingerprint (Run.sop_version), written when a run starts.

Runs older than the table get their row lazily: at start-up
(`record_existing`, from Services.start) and on the first write transaction
that touches the run, as long as the file still has the fingerprint they
started with. A run whose definition was never stored and whose file has
changed since falls back to the current file, with one warning in the log.
"""

from __future__ import annotations

import logging

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import WRITE_OPTION, Database, dialect_of
from bot.models import Run, SopDefinition
from bot.sop import Sop, SopRegistry
from bot.sop.loader import fingerprint

log = logging.getLogger(__name__)


def _writable(s: AsyncSession) -> bool:
    """Is this session a Database.transaction() (one that commits)?

    Database hands out sessions bound to an engine, never to a connection."""
    bind = s.bind
    return isinstance(bind, AsyncEngine) and bool(
        bind.get_execution_options().get(WRITE_OPTION, False)
    )


class Definitions:
    """Finds a run's own definition: memory first, then the database.

    Only definitions read from (or found in) the database are cached: a row
    written in a transaction that later rolls back must not be taken as kept.
    """

    def __init__(self, sops: SopRegistry, clock: Clock) -> None:
        self.sops = sops
        self.clock = clock
        self._cache: dict[str, Sop] = {}
        self._warned: set[str] = set()

    async def remember(self, s: AsyncSession, sop: Sop) -> str:
        """Store `sop` (once per fingerprint) in the caller's transaction;
        returns its fingerprint. Concurrent starters do not collide."""
        key = fingerprint(sop)
        values = {
            "fingerprint": key,
            "sop_key": sop.key,
            "version": sop.version,
            "definition": sop.model_dump_json(),
            "created_at": self.clock.now(),
        }
        dialect = dialect_of(s)
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(SopDefinition).values(**values).on_conflict_do_nothing()
        await s.exec(statement)
        return key

    async def resolve(self, s: AsyncSession, run: Run) -> tuple[Sop, bool]:
        """The definition `run` follows, and whether it is the one it started
        with (False only for the fall-back to a changed file)."""
        key = run.sop_version
        sop = self._cache.get(key)
        if sop is not None:
            return sop, True
        row = await s.get(SopDefinition, key)
        if row is not None:
            sop = Sop.model_validate_json(row.definition)
            if fingerprint(sop) != key:
                log.warning("SOP definition %s: stored text does not hash to its key", key)
            self._cache[key] = sop
            return sop, True
        current = self.sops.get(run.sop_key)
        if fingerprint(current) == key:
            # Started before definitions were kept, file unchanged: keep it now.
            if _writable(s):
                await self.remember(s, current)
            return current, True
        if key not in self._warned:
            self._warned.add(key)
            log.warning(
                "run %s: SOP definition %s was never stored and %s has changed since "
                "(now %s); using the current definition",
                run.id,
                key,
                run.sop_key,
                fingerprint(current),
            )
        return current, False

    async def for_run(self, s: AsyncSession, run: Run) -> Sop:
        return (await self.resolve(s, run))[0]

    async def record_existing(self, db: Database) -> int:
        """Store the definition of every run that has none yet, where the
        current file still has the run's fingerprint; returns rows written."""
        async with db.transaction() as s:
            known = col(SopDefinition.fingerprint)
            rows = (
                await s.exec(
                    select(Run.sop_key, Run.sop_version)
                    .where(col(Run.sop_version).not_in(select(known)))
                    .distinct()
                )
            ).all()
            written = 0
            for sop_key, version in rows:
                if sop_key in self.sops and fingerprint(self.sops.get(sop_key)) == version:
                    await self.remember(s, self.sops.get(sop_key))
                    written += 1
                else:
                    log.warning(
                        "runs of %s on definition %s: the file has changed and the "
                        "definition was never stored; they follow the current file",
                        sop_key,
                        version,
                    )
            return written
