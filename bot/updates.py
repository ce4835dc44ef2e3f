"""Telegram update ids: seen, and finished.

Telegram redelivers updates it did not see confirmed (after a restart, or a
webhook retry). An id is recorded as seen before its handlers run and marked
finished after the last of them: a redelivery of a finished update changes
nothing, while one whose handling crashed part way (the process died, or a
handler raised) is handled again, so nothing the person sent is lost.
Engine commands refuse what was already done (a step already finished, a
file already reviewed), which keeps that second handling harmless.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import ProcessedUpdate

KEEP = timedelta(days=7)


class Seen(StrEnum):
    new = "new"  # first delivery
    unfinished = "unfinished"  # seen before, but its handling never finished
    finished = "finished"  # handled completely: drop the redelivery


class SeenUpdates:
    """Telegram update ids seen and finished, so a redelivered update that
    was handled completely changes nothing."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def begin(self, update_id: int) -> Seen:
        """Record the id as seen (in its own transaction, so the mark
        survives whatever the handlers do) and say how it was seen before."""
        try:
            async with self.db.transaction() as s:
                s.add(ProcessedUpdate(update_id=update_id, at=self.clock.now()))
        except IntegrityError:
            async with self.db.session() as s:
                row = (
                    await s.exec(
                        select(ProcessedUpdate).where(ProcessedUpdate.update_id == update_id)
                    )
                ).first()
            if row is not None and row.finished_at is not None:
                return Seen.finished
            return Seen.unfinished
        return Seen.new

    async def finish(self, update_id: int) -> None:
        """Every handler ran to its end: a redelivery is now dropped."""
        async with self.db.transaction() as s:
            row = await s.get(ProcessedUpdate, update_id)
            if row is None:  # pruned meanwhile, or never begun: record it now
                row = ProcessedUpdate(update_id=update_id, at=self.clock.now())
            row.finished_at = self.clock.now()
            s.add(row)

    async def prune(self) -> None:
        async with self.db.transaction() as s:
            await s.exec(
                delete(ProcessedUpdate).where(col(ProcessedUpdate.at) < self.clock.now() - KEEP)
            )
