"""What the bot waits for from a person, kept in the database so a restart
loses nothing.

Two things, kept apart on purpose:

- the question (a note, a meeting time, a file for a task): one at a time,
  a new one replaces the old (`set`, `get`, `clear`). Each kind is a frozen
  dataclass below; its `kind` goes in PendingInput.kind and its fields, as
  JSON, in PendingInput.payload, so rows written before these types existed
  load as they are;
- held files: a file or album sent without a clear destination, kept while
  the bot asks where it goes. Any number of groups, each answered by its own
  buttons. Asking a question never touches them: files are lost only when
  the person cancels them, or when nobody chose for a day (`HELD_FOR`), and
  then the person is told and the event log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import bindparam, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import append_event
from bot.clock import Clock
from bot.db import Database, dialect_of, table
from bot.inbox import command
from bot.models import HeldFiles, PendingInput
from bot.outbox import queue

log = logging.getLogger(__name__)

HELD_FOR = timedelta(hours=24)


# ------------------------------------------------------------------ questions


@dataclass(frozen=True)
class Question:
    """Something the bot asked a person and waits for them to type (or,
    for a file, to send). `kind` is the stored discriminator: never rename
    one, or the questions open in people's chats are lost."""

    kind: ClassVar[str]


@dataclass(frozen=True)
class FileFor(Question):
    """Unggah berkas was pressed: the next file is for this task."""

    kind: ClassVar[str] = "upload"
    run_step_id: int
    unit_id: int | None = None


@dataclass(frozen=True)
class AlbumFor(Question):
    """An album's first page went to this task; its other pages arrive as
    separate messages and follow it. Asks nothing of the person."""

    kind: ClassVar[str] = "album"
    batch: str
    run_step_id: int
    unit_id: int | None = None


@dataclass(frozen=True)
class NoteFor(Question):
    """The step needs a note before it is done (Selesai) or decided (an
    outcome): the next text is that note."""

    kind: ClassVar[str] = "note"
    run_step_id: int
    outcome: int | None = None  # the decision's outcome; None for Selesai


@dataclass(frozen=True)
class NoteKept(Question):
    """A note typed as a reply to a task, kept until one of the task's
    buttons is pressed, so a casual reply never finishes a step."""

    kind: ClassVar[str] = "note_ready"
    run_step_id: int
    note: str


@dataclass(frozen=True)
class MeetingTime(Question):
    """Atur rapat was pressed: the next text is the date, time and place."""

    kind: ClassVar[str] = "meeting"
    run_step_id: int


@dataclass(frozen=True)
class MeetingConfirm(Question):
    """A meeting time outside office hours, waiting for Ya, tetap (or a
    new time, typed)."""

    kind: ClassVar[str] = "meeting_confirm"
    run_step_id: int
    starts_at: datetime
    place: str


@dataclass(frozen=True)
class CloseReason(Question):
    """Tutup dengan alasan: the next text is the reason for closing one
    unit (`unit_id`) or every unit still awaited (None)."""

    kind: ClassVar[str] = "close"
    run_step_id: int
    unit_id: int | None = None
    units: tuple[str, ...] = ()  # their names, as the question said them


@dataclass(frozen=True)
class ReturnNote(Question):
    """Kembalikan: the next text says why the file goes back to its unit."""

    kind: ClassVar[str] = "return"
    file_id: int


@dataclass(frozen=True)
class Outdated(Question):
    """A stored question this version cannot read (a kind it no longer
    asks, or a payload that does not fit): answered as stale, never guessed."""

    kind: ClassVar[str] = "outdated"
    stored_kind: str


QUESTIONS: dict[str, type[Question]] = {
    q.kind: q
    for q in (
        FileFor,
        AlbumFor,
        NoteFor,
        NoteKept,
        MeetingTime,
        MeetingConfirm,
        CloseReason,
        ReturnNote,
    )
}


_ADAPTERS: dict[type[Question], TypeAdapter[Question]] = {}


def adapter(cls: type[Question]) -> TypeAdapter[Question]:
    """One adapter per question type, made once: building one makes its
    whole schema (about a millisecond), too dear for every message typed."""
    found = _ADAPTERS.get(cls)
    if found is None:
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


def question_of(kind: str, payload: Mapping[str, Any]) -> Question:
    """A stored row back to its question."""
    cls = QUESTIONS.get(kind)
    if cls is None:
        return Outdated(kind)
    try:
        question: Question = adapter(cls).validate_python(dict(payload))
    except ValidationError:
        log.warning("a stored %r question does not fit its type: %r", kind, payload)
        return Outdated(kind)
    return question


def payload_of(question: Question) -> dict[str, Any]:
    """A question's fields as JSON (a time as ISO text)."""
    data: dict[str, Any] = adapter(type(question)).dump_python(question, mode="json")
    return data


# ----------------------------------------------------------------- held files


@dataclass(frozen=True)
class HeldFile:
    """A file the bot has not fetched yet: what it needs to fetch it later
    and to say its name. Stored as a JSON object in HeldFiles.files, under
    these keys."""

    file_id: str
    name: str
    mime: str = "application/octet-stream"
    kind: str = "document"  # document | photo
    size: int | None = None  # Telegram may not say
    batch: str | None = None  # the album (media_group_id) it is a page of

    def to_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "name": self.name,
            "mime": self.mime,
            "kind": self.kind,
            "size": self.size,
            "batch": self.batch,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HeldFile:
        size = data.get("size")
        batch = data.get("batch")
        return cls(
            file_id=str(data["file_id"]),
            name=str(data["name"]),
            mime=str(data.get("mime") or "application/octet-stream"),
            kind=str(data.get("kind") or "document"),
            size=int(size) if size is not None else None,
            batch=str(batch) if batch else None,
        )


@dataclass(frozen=True)
class HeldGroup:
    """A held file, or the pages of one album, with its own question."""

    id: int
    batch: str | None
    files: tuple[HeldFile, ...]
    created_at: datetime

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.files]


def _asking(insert: Callable[[Any], Any]) -> UpdateBase:
    """The question upsert, with the question's fields as parameters."""
    statement = insert(table(PendingInput)).values(
        {name: bindparam(name) for name in _QUESTION_COLUMNS}
    )
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["member_id"],
        set_={name: statement.excluded[name] for name in _QUESTION_COLUMNS if name != "member_id"},
    )


_QUESTION_COLUMNS = ("member_id", "kind", "payload", "created_at", "prompt_message_id")
# Built once per dialect: a press that asks writes it on every update, and
# building it cost about as much as running it (ARCHITECTURE, "Statements built once").
_ASK = {"postgresql": _asking(pg_insert), "sqlite": _asking(sqlite_insert)}
# A person's held files: read on every press and note that may use them.
_HELD = (
    select(HeldFiles)
    .where(col(HeldFiles.member_id) == bindparam("member_id"))
    .order_by(col(HeldFiles.id))
)


def _group(row: HeldFiles) -> HeldGroup:
    files = tuple(HeldFile.from_json(f) for f in row.files)
    return HeldGroup(row.id or 0, row.batch, files, row.created_at)


class Waiting:
    """The one question the bot is waiting for a person to answer, and the
    files it holds for them, in the database so a restart loses neither."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------ the question

    async def set(self, member_id: int, question: Question) -> None:
        """Replace whatever question was awaited before (held files stay)."""
        assert not isinstance(question, Outdated), "an outdated question is only read"
        values = {
            "member_id": member_id,
            "kind": question.kind,
            "payload": payload_of(question),
            "created_at": self.clock.now(),
            "prompt_message_id": None,
        }
        async with command(self.db, self.clock) as s:
            # One statement (an upsert): a press that asks runs on every update.
            dialect = dialect_of(s)
            await s.exec(_ASK[dialect], params=values)

    async def asked_in(self, member_id: int, message_id: int) -> None:
        """The message that asks the question now awaited, so that the answer
        is written there instead of in a new message."""
        async with command(self.db, self.clock) as s:
            row = await s.get(PendingInput, member_id)
            if row is not None:
                row.prompt_message_id = message_id
                s.add(row)

    async def prompt_of(self, member_id: int) -> int | None:
        """The message that asked the question awaited now, if known."""
        async with self.db.session() as s:
            row = await s.get(PendingInput, member_id)
            return row.prompt_message_id if row is not None else None

    async def get(self, member_id: int) -> Question | None:
        async with self.db.session() as s:
            row = await s.get(PendingInput, member_id)
            return question_of(row.kind, row.payload) if row is not None else None

    async def clear(self, member_id: int) -> Question | None:
        """Forget the question, and say which it was; held files stay held."""
        async with command(self.db, self.clock) as s:
            row = await s.get(PendingInput, member_id)
            if row is None:
                return None
            await s.delete(row)
            return question_of(row.kind, row.payload)

    # -------------------------------------------------------------- held files

    async def hold(self, member_id: int, file: HeldFile) -> HeldGroup:
        """Hold a file as a new group beside any already held."""
        async with command(self.db, self.clock) as s:
            row = HeldFiles(
                member_id=member_id,
                batch=file.batch,
                files=[file.to_json()],
                created_at=self.clock.now(),
            )
            s.add(row)
            await s.flush()
            return _group(row)

    async def add_page(self, member_id: int, batch: str, file: HeldFile) -> bool:
        """Another page of an album whose destination is being asked: it
        joins that group. False when no such album is held."""
        async with command(self.db, self.clock) as s:
            row = (
                await s.exec(
                    select(HeldFiles)
                    .where(HeldFiles.member_id == member_id, HeldFiles.batch == batch)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return False
            row.files = [*row.files, file.to_json()]  # a new list, so the change is seen
            s.add(row)
            return True

    async def current(self, member_id: int) -> list[HeldGroup]:
        """The person's held groups, oldest first, after letting go of any
        held past HELD_FOR (see expire_held): one read when none has."""
        groups = await self.held(member_id)
        cutoff = self.clock.now() - HELD_FOR
        if any(g.created_at <= cutoff for g in groups):
            await self.expire_held(member_id)
            return [g for g in groups if g.created_at > cutoff]
        return groups

    async def held(self, member_id: int) -> list[HeldGroup]:
        """The person's held groups, oldest first."""
        async with self.db.session() as s:
            rows = await s.exec(_HELD, params={"member_id": member_id})
            return [_group(r) for r in rows.all()]

    async def take(self, member_id: int, group_id: int | None) -> HeldGroup | None:
        """Remove one held group (the oldest for a question that named none)
        and return it; None when it is no longer held. A second press of the
        same button finds nothing, so a file is stored once."""
        async with command(self.db, self.clock) as s:
            query = select(HeldFiles).where(HeldFiles.member_id == member_id)
            if group_id is not None:
                query = query.where(HeldFiles.id == group_id)
            row = (await s.exec(query.order_by(col(HeldFiles.id)).limit(1))).first()
            if row is None:
                return None
            gone = await s.exec(delete(HeldFiles).where(col(HeldFiles.id) == row.id))
            return _group(row) if gone.rowcount else None

    async def restore(self, member_id: int, group: HeldGroup) -> None:
        """Hold again, under its own id, what a pick could not store (the
        task refused it), so the question's other buttons still work."""
        if not group.files:
            return
        async with command(self.db, self.clock) as s:
            s.add(
                HeldFiles(
                    id=group.id,
                    member_id=member_id,
                    batch=group.batch,
                    files=[f.to_json() for f in group.files],
                    created_at=group.created_at,
                )
            )

    async def drop_held(self, member_id: int, group_id: int | None = None) -> list[HeldGroup]:
        """The person cancelled: forget one held group, or all of them, and
        record which files were never stored."""
        async with command(self.db, self.clock) as s:
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
        async with command(self.db, self.clock) as s:
            query = select(HeldFiles).where(HeldFiles.created_at <= cutoff)
            if member_id is not None:
                query = query.where(HeldFiles.member_id == member_id)
            rows = list((await s.exec(query.order_by(col(HeldFiles.id)))).all())
            expired: list[HeldGroup] = []
            for owner in sorted({r.member_id for r in rows}):
                groups = [_group(r) for r in rows if r.member_id == owner]
                await self._forget(s, owner, groups, "held_files_expired", actor_id=None)
                now = self.clock.now()
                await queue(
                    s,
                    key=f"held_expired:{groups[0].id}",
                    member_id=owner,
                    template="held_expired",
                    context={
                        "names": [n for g in groups for n in g.names],
                        "since": groups[0].created_at.isoformat(),
                        "hours": int(HELD_FOR.total_seconds() // 3600),
                    },
                    now=now,
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
        await s.exec(delete(HeldFiles).where(col(HeldFiles.id).in_([g.id for g in groups])))
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
