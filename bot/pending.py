"""What the bot waits for from a person (a note, a meeting time, a held
file), kept in the database so a restart loses nothing."""

from __future__ import annotations

from typing import Any

from bot.clock import Clock
from bot.db import Database
from bot.models import PendingInput


class Waiting:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def set(self, member_id: int, kind: str, **payload: Any) -> None:
        """Replace whatever was awaited before: one question at a time."""
        async with self.db.transaction() as s:
            row = await s.get(PendingInput, member_id)
            if row is None:
                row = PendingInput(member_id=member_id, kind=kind)
            row.kind, row.payload, row.created_at = kind, payload, self.clock.now()
            s.add(row)

    async def get(self, member_id: int) -> PendingInput | None:
        async with self.db.session() as s:
            return await s.get(PendingInput, member_id)

    async def clear(self, member_id: int) -> PendingInput | None:
        async with self.db.transaction() as s:
            row = await s.get(PendingInput, member_id)
            if row is not None:
                await s.delete(row)
            return row
