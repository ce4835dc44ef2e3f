"""Updates of different chats in parallel, each chat's in the order sent.

python-telegram-bot handled one update at a time (`concurrent_updates(False)`):
fifty people pressing at once waited for each other, the fiftieth seconds
late. Handling everything at once would let one person's updates overtake
each other (an album's pages, a note typed right after its button). So each
chat has a lane (a lock, FIFO for its waiters) that its updates take in the
order python-telegram-bot starts them, which is the order received; lanes of
different chats run side by side, at most WORKERS handlers at a time, and a
lane is dropped as soon as nobody waits on it.

Each update is handled inside the inbox's scope (bot/inbox.py), so the
command it asks for marks it done in the same commit.

What still serialises: SQLite takes one writer at a time (BEGIN IMMEDIATE
with a busy timeout, bot/db.py), and every command on a run locks the run
first (bot/run/reads.py), so two people acting on one run are ordered by the
database, not by this processor. Nothing in the handlers keeps per-update
state in memory across chats: questions, held files and albums are rows per
member (bot/pending.py), and a member's updates share a lane.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.inbox import Inbox

# Admitted at once (waiting in a lane or running): python-telegram-bot's own
# bound, which holds further updates in its queue.
ADMITTED = 256
# Handlers running at once: enough for fifty people at a time (they mostly
# wait on Telegram and the database), well under the database pool (15).
WORKERS = 8


@dataclass(eq=False)
class Lane:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # updates waiting for or holding the lock


def lane_key(update: object) -> int | None:
    """One lane per chat (a private chat's id is its person's); an update
    without a chat, by its sender; anything else has no lane."""
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


class ChatLanes(BaseUpdateProcessor):
    """The Application's update processor (ApplicationBuilder.concurrent_updates)."""

    def __init__(self, inbox: Inbox, *, admitted: int = ADMITTED, workers: int = WORKERS):
        super().__init__(max_concurrent_updates=admitted)
        self.inbox = inbox
        self._workers = asyncio.Semaphore(workers)
        self._lanes: dict[int, Lane] = {}

    @property
    def lanes(self) -> int:
        """Lanes open now: as many as chats with an update waiting or running."""
        return len(self._lanes)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = lane_key(update)
        if key is None:
            await self._run(update, coroutine)
            return
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane()
        lane.users += 1
        try:
            async with lane.lock:
                await self._run(update, coroutine)
        finally:
            lane.users -= 1
            if lane.users == 0:
                del self._lanes[key]

    async def _run(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            async with self._workers:
                if isinstance(update, Update):
                    async with self.inbox.handling(update.update_id):
                        await coroutine
                else:
                    await coroutine
        finally:
            if inspect.iscoroutine(coroutine) and inspect.getcoroutinestate(coroutine) == (
                inspect.CORO_CREATED
            ):
                coroutine.close()  # cancelled before it began: no "never awaited" warning

    async def initialize(self) -> None:
        """Nothing to open: lanes come and go with the updates."""

    async def shutdown(self) -> None:
        """Nothing to close: python-telegram-bot waits for running updates."""
