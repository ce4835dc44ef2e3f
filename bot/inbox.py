"""The inbox: every Telegram update is stored before Telegram hears that it
arrived, and is handled from the store.

Why: python-telegram-bot's poller confirms a batch (the next getUpdates with
a higher offset) before the Application has handled it. A bot killed in that
window lost what the person sent: no answer, nothing recorded, and Telegram
never sends a confirmed update again. So the intake (bot/intake.py) stores
each batch here in one insert before it asks for the next one (a webhook
answers Telegram only after the store), and at start the updates stored but
never finished are handled first.

Done: an update is marked done in the commit of the command it asked for
(`command`, used by the engine's and the members' commands and by every
write of what the bot waits for from a person, bot/pending.py: the task that
handles an update carries it in a context variable), so the state change and
the mark are one. An update whose handlers ran no command is marked done by
one statement after them. A handler that raised leaves it failed: the person
was told, so a start does not begin it again, but a redelivery is handled.

Duplicates: a redelivered update (Telegram sends an unconfirmed one again
after a restart, a webhook call is retried) is counted on its row, and
handled only when its first handling failed or died with the process; one
done, or being handled now, changes nothing. Engine commands refuse what was
already done, which keeps a second handling harmless.

Rows are kept two days (Telegram keeps an update 24 hours, so no redelivery
comes later) and then pruned; a done row keeps no payload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, null, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import Database, table
from bot.models import InboxUpdate

log = logging.getLogger(__name__)

KEEP = timedelta(days=2)  # a redelivery comes within Telegram's 24 hours
RECOVER_WITHIN = timedelta(days=1)  # older than Telegram keeps updates: too late to act on
MAX_RESTARTS = 3  # an update that keeps the process from finishing it is given up

Payload = dict[str, Any]


@dataclass(eq=False)
class Handling:
    """The update one task is handling now, and what became of it."""

    update_id: int
    task: asyncio.Task[Any] | None
    done: bool = False  # its done mark is committed
    failed: bool = False  # one of its handlers raised


_current: ContextVar[Handling | None] = ContextVar("sopbot_handling", default=None)


def current() -> Handling | None:
    """The update the running task is handling, if any. A task started from
    a handler (a timer, a kicked job) inherits the variable but not the
    update: only the task that handles it counts."""
    handling = _current.get()
    if handling is None or handling.task is not asyncio.current_task():
        return None
    return handling


def handling_failed() -> None:
    """A handler of the current update raised and the person was told: it
    is not done, and a redelivery of it is handled again."""
    handling = current()
    if handling is not None:
        handling.failed = True


# The one statement of bookkeeping an update costs; built once, as it runs
# on every update (ARCHITECTURE, "Statements built once").
_INBOX = table(InboxUpdate)
_MARK_DONE = (
    update(_INBOX)
    .where(_INBOX.c.update_id == bindparam("marked_id"), _INBOX.c.done_at.is_(None))
    .values(done_at=bindparam("marked_at"), payload=null())
)


def _storing(insert: Any) -> UpdateBase:
    """The batch's insert: a row per update not stored yet, and their ids."""
    statement = insert(_INBOX).on_conflict_do_nothing(index_elements=["update_id"])
    return statement.returning(_INBOX.c.update_id)  # type: ignore[no-any-return]


# One statement for any batch, its rows as parameters (a VALUES list written
# into the statement is compiled anew for every batch).
_STORE = {"postgresql": _storing(postgresql.insert), "sqlite": _storing(sqlite.insert)}


async def _mark_done(s: AsyncSession, update_id: int, now: datetime) -> None:
    await s.exec(_MARK_DONE, params={"marked_id": update_id, "marked_at": now})


@asynccontextmanager
async def command(db: Database, clock: Clock) -> AsyncIterator[AsyncSession]:
    """A command's one transaction; when the task handles an update, that
    update is marked done in the same commit (once: a second command of the
    same update adds nothing). A command that raises rolls back the mark
    with everything else."""
    handling = current()
    async with db.transaction() as s:
        yield s
        if handling is not None and not handling.done:
            await _mark_done(s, handling.update_id, clock.now())
    if handling is not None:
        handling.done = True


class Inbox:
    """The stored updates, and which of them this process is handling."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._in_flight: set[int] = set()  # stored, queued or being handled here

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def store(self, updates: Sequence[Payload]) -> list[int]:
        """Keep a batch as received (one insert; a redelivery is counted on
        its row) and return the ids to handle, in order: the new updates, and
        redeliveries of ones whose handling failed or died with a process."""
        if not updates:
            return []
        now = self.clock.now()
        by_id = {int(u["update_id"]): u for u in updates}
        rows = [
            {"update_id": update_id, "payload": payload, "received_at": now}
            for update_id, payload in by_id.items()
        ]
        again: set[int] = set()
        taken: set[int] = set()
        try:
            async with self.db.transaction() as s:
                stored = _STORE[self.db.engine.dialect.name]
                new = set((await s.exec(stored, params=rows)).scalars())
                repeated = [update_id for update_id in by_id if update_id not in new]
                if repeated:
                    counted = (
                        update(InboxUpdate)
                        .where(col(InboxUpdate.update_id).in_(repeated))
                        .values(duplicates=col(InboxUpdate.duplicates) + 1)
                        .returning(col(InboxUpdate.update_id), col(InboxUpdate.done_at))
                    )
                    for update_id, done_at in (await s.exec(counted)).all():
                        if done_at is None and update_id not in self._in_flight:
                            again.add(update_id)
                # Claimed before the commit, so a concurrent redelivery (a
                # retried webhook call) finds it in flight.
                taken = new | again
                self._in_flight.update(taken)
        except BaseException:
            self._in_flight.difference_update(taken)
            raise
        for update_id in repeated:
            if update_id in again:
                log.warning("update %s redelivered, not finished before: handled again", update_id)
            else:
                log.info("update %s redelivered after it was handled: recorded, dropped", update_id)
        return [update_id for update_id in by_id if update_id in taken]

    async def unfinished(self) -> list[Payload]:
        """At start, before anything new: the updates stored and neither
        done nor failed (the process ended while they waited or were being
        handled), oldest first. One begun at MAX_RESTARTS starts already, or
        older than Telegram keeps an update, is given up (failed, logged)."""
        now = self.clock.now()
        wanted: list[Payload] = []
        async with self.db.transaction() as s:
            rows = (
                await s.exec(
                    select(InboxUpdate)
                    .where(col(InboxUpdate.done_at).is_(None), col(InboxUpdate.failed_at).is_(None))
                    .order_by(col(InboxUpdate.update_id))
                )
            ).all()
            for row in rows:
                if (
                    row.payload is None
                    or row.restarts >= MAX_RESTARTS
                    or row.received_at < now - RECOVER_WITHIN
                ):
                    log.warning("update %s never finished; given up", row.update_id)
                    row.failed_at = now
                else:
                    row.restarts += 1
                    wanted.append(row.payload)
                s.add(row)
        self._in_flight.update(int(u["update_id"]) for u in wanted)
        return wanted

    @asynccontextmanager
    async def handling(self, update_id: int) -> AsyncIterator[Handling]:
        """Around every handler of one update: commands inside are marked
        with it (`command`); after them it is marked done if no command did,
        or failed if a handler raised. A handling cut off (the bot stopping)
        leaves the update for the next start."""
        handling = Handling(update_id, asyncio.current_task())
        token = _current.set(handling)
        ended: BaseException | None = None
        try:
            yield handling
        except BaseException as exc:
            ended = exc
            raise
        finally:
            _current.reset(token)
            try:
                if not isinstance(ended, asyncio.CancelledError):
                    handling.failed = handling.failed or ended is not None
                    await self._settle(handling)
            finally:
                self._in_flight.discard(update_id)

    async def _settle(self, handling: Handling) -> None:
        if handling.done:
            return
        now = self.clock.now()
        try:
            async with self.db.transaction() as s:
                if handling.failed:
                    await s.exec(
                        update(InboxUpdate)
                        .where(col(InboxUpdate.update_id) == handling.update_id)
                        .values(failed_at=now)
                    )
                else:
                    await _mark_done(s, handling.update_id, now)
        except Exception:  # handled already; at worst it is handled again at start
            log.exception("could not record how update %s ended", handling.update_id)
            return
        handling.done = not handling.failed

    async def get(self, update_id: int) -> InboxUpdate | None:
        async with self.db.session() as s:
            return await s.get(InboxUpdate, update_id)

    async def prune(self) -> None:
        """Forget what was received more than KEEP ago: the table stays as
        small as two days of updates."""
        async with self.db.transaction() as s:
            await s.exec(
                delete(InboxUpdate).where(col(InboxUpdate.received_at) < self.clock.now() - KEEP)
            )
