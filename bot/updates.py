"""Telegram update ids already handled.

Telegram redelivers updates it did not see confirmed (after a restart, or a
webhook retry); recording each id once makes a redelivery change nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.db import Database
from bot.models import ProcessedUpdate

KEEP = timedelta(days=7)


class SeenUpdates:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def first_time(self, update_id: int) -> bool:
        """Record the id; False when it was recorded before."""
        try:
            async with self.db.transaction() as s:
                s.add(ProcessedUpdate(update_id=update_id, at=self.clock.now()))
        except IntegrityError:
            return False
        return True

    async def prune(self) -> None:
        async with self.db.transaction() as s:
            await s.exec(
                delete(ProcessedUpdate).where(  # type: ignore[call-overload]
                    ProcessedUpdate.at < self.clock.now() - KEEP
                )
            )
