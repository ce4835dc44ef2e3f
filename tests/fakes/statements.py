"""Counting the SQL statements an update costs (issue 10), for the tests
and the benchmark: a SQLAlchemy `before_cursor_execute` listener on the
bot's engine, and a wrapper around the Application's `process_update` that
marks which statements belong to the update being handled.

A statement counts when it runs while an update is handled, in that
update's own task (a context variable set by the wrapper): the outbox
sender's poll or a deadline sweep running meanwhile is not the update's
(the outbox sender kicked by the update runs in a task of its own). Left
out, so that the count is the handlers' and the engine's own:

- transaction control (BEGIN, COMMIT, ...): SQLite's BEGIN IMMEDIATE goes
  through a cursor, PostgreSQL's through the driver; neither is a query;
- the update-id bookkeeping (`bot/updates.py`, the `processedupdate` table,
  or the durable inbox that replaces it, `inboxupdate`): counted apart, as
  `bookkeeping`, because it is one helper's budget and the rest another's.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.ext import Application

UNCACHED = (CacheStats.NO_CACHE_KEY, CacheStats.CACHING_DISABLED)
CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
BOOKKEEPING = re.compile(r"\b(processedupdate|inboxupdate)\b", re.IGNORECASE)


@dataclass
class UpdateStatements:
    """The statements of one update: the handlers' and the bookkeeping's."""

    statements: list[str] = field(default_factory=list)
    bookkeeping: list[str] = field(default_factory=list)
    commits: int = 0  # write transactions committed (the bookkeeping's own included)
    # Statements SQLAlchemy cannot cache (no cache key): compiled anew each time.
    uncached: list[str] = field(default_factory=list)
    # The task handling the update: a job it schedules (the outbox kick)
    # may inherit the context variable, but runs in a task of its own.
    task: asyncio.Task[Any] | None = None

    @property
    def count(self) -> int:
        return len(self.statements)


_current: ContextVar[UpdateStatements | None] = ContextVar("sopbot_update_statements", default=None)


class StatementLog:
    """Every handled update's statements, in the order the updates finished."""

    def __init__(self, engine: AsyncEngine, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self.updates: list[UpdateStatements] = []
        # Each update's task, once its handlers are done (see _on_execute).
        self._finished: WeakKeyDictionary[asyncio.Task[Any], UpdateStatements] = WeakKeyDictionary()
        self._engine = engine.sync_engine
        self._app = app
        self._original = app.process_update
        event.listen(self._engine, "before_cursor_execute", self._on_execute)
        event.listen(self._engine, "commit", self._on_commit)

        async def process_update(update: object) -> None:
            record = UpdateStatements(task=asyncio.current_task())
            token = _current.set(record)
            try:
                await self._original(update)
            finally:
                _current.reset(token)
                self.updates.append(record)
                if record.task is not None:
                    self._finished[record.task] = record

        # PTB has no hook around one update's handling: wrap the method.
        app.process_update = process_update  # type: ignore[method-assign]

    def _on_execute(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        record = _current.get()
        if record is None and BOOKKEEPING.search(statement):
            # The inbox marks an update that ran no command done after its
            # handlers, in the same task: still that update's bookkeeping.
            record = self._finished.get(asyncio.current_task())
        if record is None or CONTROL.match(statement) or asyncio.current_task() is not record.task:
            return
        (record.bookkeeping if BOOKKEEPING.search(statement) else record.statements).append(
            " ".join(statement.split())
        )
        if getattr(context, "cache_hit", None) in UNCACHED:
            record.uncached.append(" ".join(statement.split()))

    def _on_commit(self, conn: Any) -> None:
        record = _current.get() or self._finished.get(asyncio.current_task())  # see _on_execute
        if record is not None and asyncio.current_task() is record.task:
            record.commits += 1

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._on_execute)
        event.remove(self._engine, "commit", self._on_commit)
        self._app.process_update = self._original  # type: ignore[method-assign]

    @contextmanager
    def since(self) -> Iterator[list[UpdateStatements]]:
        """The updates handled inside the block."""
        start = len(self.updates)
        handled: list[UpdateStatements] = []
        yield handled
        handled.extend(self.updates[start:])
