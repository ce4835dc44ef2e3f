"""What the bot waits for from a person, kept in the database so a restart
loses nothing.

Two things, kept apart on purpose:

- the question (a note, a meeting time, a file for a task): one at a time,
  a new one replaces the old (`set`, `get`, `clear`);
- held files: a file or album sent without a clear destination, kept while
  the bot asks where it goes. Any number of groups, each answered by its own
  buttons. Asking a question never touches them: files are lost only when
  the person cancels them, or when nobody chose for a day (`HELD_FOR`), and
  then the person is told and the event log says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import append_event
from bot.clock import Clock
from bot.db import Database
from bot.models import HeldFiles, Notification, PendingInput

HELD_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class HeldGroup:
    """A held file, or the pages of one album, with its own question."""

    id: int
    batch: str | None
    files: list[dict[str, Any]]
    created_at: datetime

    @property
    def names(self) -> list[str]:
        return [str(f["name"]) for f in self.files]


def _group(row: HeldFiles) -> HeldGroup:
    return HeldGroup(row.id or 0, row.batch, list(row.files), row.created_at)


class Waiting:
    """The one question the bot is waiting for a person to answer, and the
    files it holds for them, in the database so a restart loses neither."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------ the question

    async def set(self, member_id: int, kind: str, **payload: Any) -> None:
        """Replace whatever question was awaited before (held files stay)."""
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
        """Forget the question; held files stay held."""
        async with self.db.transaction() as s:
            row = await s.get(PendingInput, member_id)
            if row is not None:
                await s.delete(row)
            return row

    # -------------------------------------------------------------- held files

    async def hold(self, member_id: int, file: dict[str, Any]) -> HeldGroup:
        """Hold a file as a new group beside any already held."""
        async with self.db.transaction() as s:
            row = HeldFiles(
                member_id=member_id,
                batch=file.get("batch"),
                files=[file],
                created_at=self.clock.now(),
            )
            s.add(row)
            await s.flush()
            return _group(row)

    async def add_page(self, member_id: int, batch: str, file: dict[str, Any]) -> bool:
        """Another page of an album whose destination is being asked: it
        joins that group. False when no such album is held."""
        async with self.db.transaction() as s:
            row = (
                await s.exec(
                    select(HeldFiles)
                    .where(HeldFiles.member_id == member_id, HeldFiles.batch == batch)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return False
            row.files = [*row.files, file]  # a new list, so the JSON change is seen
            s.add(row)
            return True

    async def held(self, member_id: int) -> list[HeldGroup]:
        """The person's held groups, oldest first."""
        async with self.db.session() as s:
            rows = await s.exec(
                select(HeldFiles)
                .where(HeldFiles.member_id == member_id)
                .order_by(col(HeldFiles.id))
            )
            return [_group(r) for r in rows.all()]

    async def take(self, member_id: int, group_id: int | None) -> HeldGroup | None:
        """Remove one held group (the oldest for a question that named none)
        and return it; None when it is no longer held. A second press of the
        same button finds nothing, so a file is stored once."""
        async with self.db.transaction() as s:
            query = select(HeldFiles).where(HeldFiles.member_id == member_id)
            if group_id is not None:
                query = query.where(HeldFiles.id == group_id)
            row = (await s.exec(query.order_by(col(HeldFiles.id)).limit(1))).first()
            if row is None:
                return None
            gone = await s.exec(
                delete(HeldFiles).where(col(HeldFiles.id) == row.id)  # type: ignore[call-overload]
            )
            return _group(row) if gone.rowcount else None

    async def restore(self, member_id: int, group: HeldGroup) -> None:
        """Hold again, under its own id, what a pick could not store (the
        task refused it), so the question's other buttons still work."""
        if not group.files:
            return
        async with self.db.transaction() as s:
            s.add(
                HeldFiles(
                    id=group.id,
                    member_id=member_id,
                    batch=group.batch,
                    files=list(group.files),
                    created_at=group.created_at,
                )
            )

    async def drop_held(self, member_id: int, group_id: int | None = None) -> list[HeldGroup]:
        """The person cancelled: forget one held group, or all of them, and
        record which files were never stored."""
        async with self.db.transaction() as s:
            query = select(HeldFiles).where(HeldFiles.member_id == member_id)
            if group_id is not None:
                query = query.where(HeldFiles.id == group_id)
            rows = list((await s.exec(query.order_by(col(HeldFiles.id)))).all())
            groups = [_group(r) for r in rows]
            await self._forget(s, member_id, groups, "held_files_cancelled", actor_id=member_id)
            return groups

    async def expire_held(self, member_id: int | None = None) -> list[HeldGroup]:
        """Groups nobody placed within HELD_FOR are let go: recorded, and the
        person is told which files to send again. For one person (before
        their held files are shown or used) or, from the hourly job, all."""
        cutoff = self.clock.now() - HELD_FOR
        async with self.db.transaction() as s:
            query = select(HeldFiles).where(HeldFiles.created_at <= cutoff)
            if member_id is not None:
                query = query.where(HeldFiles.member_id == member_id)
            rows = list((await s.exec(query.order_by(col(HeldFiles.id)))).all())
            expired: list[HeldGroup] = []
            for owner in sorted({r.member_id for r in rows}):
                groups = [_group(r) for r in rows if r.member_id == owner]
                await self._forget(s, owner, groups, "held_files_expired", actor_id=None)
                now = self.clock.now()
                s.add(
                    Notification(
                        key=f"held_expired:{groups[0].id}",
                        member_id=owner,
                        template="held_expired",
                        context={
                            "names": [n for g in groups for n in g.names],
                            "since": groups[0].created_at.isoformat(),
                            "hours": int(HELD_FOR.total_seconds() // 3600),
                        },
                        created_at=now,
                        not_before=now,
                    )
                )
                expired += groups
            return expired

    async def _forget(
        self,
        s: AsyncSession,
        member_id: int,
        groups: list[HeldGroup],
        kind: str,
        *,
        actor_id: int | None,
    ) -> None:
        """Delete the groups and put on record which files were never stored."""
        if not groups:
            return
        await s.exec(
            delete(HeldFiles).where(  # type: ignore[call-overload]
                col(HeldFiles.id).in_([g.id for g in groups])
            )
        )
        await append_event(
            s,
            kind,
            at=self.clock.now(),
            actor_id=actor_id,
            details={
                "member_id": member_id,
                "names": [n for g in groups for n in g.names],
                "held_since": min(g.created_at for g in groups).isoformat(),
            },
        )
