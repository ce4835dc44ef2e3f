"""Database tables (SQLModel). Times are aware UTC datetimes (UTCDateTime)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


def _time(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _json(**kw: Any) -> Any:
    return Field(sa_type=JSON, **kw)


class RunState(StrEnum):
    open = "open"
    done = "done"
    cancelled = "cancelled"


class StepState(StrEnum):
    waiting = "waiting"
    open = "open"
    done = "done"
    returned = "returned"
    skipped = "skipped"


class AssignmentState(StrEnum):
    open = "open"  # owes something
    delivered = "delivered"  # a unit uploaded; awaiting review
    accepted = "accepted"  # the planner accepted the unit's file
    returned = "returned"  # sent back with a note; owes a new upload
    done = "done"  # finished its part
    closed = "closed"  # closed by someone else (e.g. collection closed)


class ReviewState(StrEnum):
    received = "received"
    accepted = "accepted"
    returned = "returned"
    superseded = "superseded"


class OutboxState(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    blocked = "blocked"
    dropped = "dropped"  # no longer owed (superseded, step done, run paused); last_error says why


class Unit(SQLModel, table=True):
    """A bidang or the sekretariat; the list comes from the office file."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    active: bool = True


class Member(SQLModel, table=True):
    """A person known to the bot by their Telegram account."""

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_column=Column(BigInteger, unique=True, index=True, nullable=False))
    name: str
    username: str | None = None
    active: bool = True
    joined_at: datetime = _time()
    blocked_at: datetime | None = _time(default=None)


class MemberRole(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("member_id", "role", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    role: str = Field(index=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")


class Invitation(SQLModel, table=True):
    """A single-use join link; only the token's hash is stored."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True)
    role: str
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _time()
    expires_at: datetime = _time()
    used_at: datetime | None = _time(default=None)
    used_by: int | None = Field(default=None, foreign_key="member.id")
    revoked: bool = False


class Run(SQLModel, table=True):
    """One execution of an SOP for a period."""

    id: int | None = Field(default=None, primary_key=True)
    sop_key: str = Field(index=True)
    sop_version: str
    title: str
    state: RunState = RunState.open
    started_at: datetime = _time()
    started_by: int | None = Field(default=None, foreign_key="member.id")
    ended_at: datetime | None = _time(default=None)
    reminders_paused: bool = False
    cancel_reason: str | None = None
    cancelled_by: int | None = Field(default=None, foreign_key="member.id")
    # What asked for the run (e.g. "update:123"): a request redelivered after a
    # crash finds its run instead of starting a second one.
    request_key: str | None = Field(default=None, index=True, unique=True)
    # The cover letter's number (the drawn one, or one the sekretaris typed).
    letter_number: str | None = None


class RunStep(SQLModel, table=True):
    """One opening of a step in a run; a loop back makes a new iteration."""

    __table_args__ = (
        UniqueConstraint("run_id", "step_key", "iteration"),
        # The deadline sweep's question, "which open steps need a look now?",
        # and the next timer's, "when does the next one?": a range of this
        # index, never a scan of every step ever opened (bot/deadlines.py).
        Index("ix_runstep_state_check_at", "state", "check_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    step_key: str
    number: int
    iteration: int = 1
    state: StepState = StepState.waiting
    opened_at: datetime | None = _time(default=None)
    due_at: datetime | None = _time(default=None)
    done_at: datetime | None = _time(default=None)
    done_by: int | None = Field(default=None, foreign_key="member.id")
    outcome: str | None = None
    note: str | None = None
    # When the deadline sweep next has something to do for this open step:
    # its due time, then the first late minute, the next escalation level,
    # the next reminder. Set where the due time is set and after each sweep
    # of the step (bot/deadlines.py); None: nothing more to do.
    check_at: datetime | None = _time(default=None)


class Assignment(SQLModel, table=True):
    """Who owes what on a step: a role (and unit), or a delegated member."""

    # A member's tasks: the assignments still owed in their roles.
    __table_args__ = (Index("ix_assignment_state_role", "state", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    run_step_id: int = Field(foreign_key="runstep.id", index=True)
    role: str
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    member_id: int | None = Field(default=None, foreign_key="member.id")
    state: AssignmentState = AssignmentState.open
    updated_at: datetime = _time()
    # The reviewer's note when the unit's file was returned.
    note: str | None = None
    # Handed to `member_id` by whom, and when (Limpahkan).
    delegated_by: int | None = Field(default=None, foreign_key="member.id")
    delegated_at: datetime | None = _time(default=None)
    # A unit that could not deliver: closed by whom, when and why.
    closed_by: int | None = Field(default=None, foreign_key="member.id")
    closed_at: datetime | None = _time(default=None)
    close_reason: str | None = None


class StoredFile(SQLModel, table=True):
    """A file received for a step; stored under a name the bot makes."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    run_step_id: int = Field(foreign_key="runstep.id", index=True)
    assignment_id: int | None = Field(default=None, foreign_key="assignment.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    # None: the bot made it (a draft, bot/run/drafts.py).
    uploader_id: int | None = Field(default=None, foreign_key="member.id")
    original_name: str
    mime_type: str
    size: int
    sha256: str
    storage_path: str
    version: int = 1
    # Telegram album (media_group_id): pages sent together are one version.
    batch: str | None = None
    kind: str = "document"
    telegram_file_id: str | None = None
    review_state: ReviewState = ReviewState.received
    review_note: str | None = None
    reviewed_by: int | None = Field(default=None, foreign_key="member.id")
    reviewed_at: datetime | None = _time(default=None)
    received_at: datetime = _time()


class Meeting(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    run_step_id: int = Field(foreign_key="runstep.id", index=True)
    starts_at: datetime = _time()
    place: str
    created_by: int = Field(foreign_key="member.id")


class Attendance(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    attending: bool
    answered_at: datetime = _time()


class Event(SQLModel, table=True):
    """Append-only, hash-chained audit log."""

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True, index=True)
    run_id: int | None = Field(default=None, index=True)
    at: datetime = _time()
    actor_id: int | None = None
    kind: str = Field(index=True)
    details: dict[str, Any] = _json(default_factory=dict)
    prev_hash: str
    hash: str


class ChainHead(SQLModel, table=True):
    """The last link of the event chain; its row lock serialises appends."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = ""


class Notification(SQLModel, table=True):
    """Outbox: a message owed to a member, written in the engine's transaction."""

    # The sender's poll every few seconds: pending rows whose time has come.
    __table_args__ = (Index("ix_notification_state_not_before", "state", "not_before"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    template: str
    context: dict[str, Any] = _json(default_factory=dict)
    run_id: int | None = Field(default=None, foreign_key="run.id")
    run_step_id: int | None = Field(default=None, foreign_key="runstep.id")
    assignment_id: int | None = Field(default=None, foreign_key="assignment.id")
    file_id: int | None = Field(default=None, foreign_key="storedfile.id")
    state: OutboxState = Field(default=OutboxState.pending, index=True)
    # Reminders, escalations and digests wait for office hours even when a
    # retry or a restart makes them due in the evening.
    office_hours_only: bool = False
    # Sent without a sound (Telegram's disable_notification): a line the
    # reader may ignore, e.g. the audit seal the admins keep as a witness.
    silent: bool = False
    attempts: int = 0
    created_at: datetime = _time()
    not_before: datetime = _time()
    sending_since: datetime | None = _time(default=None)
    sent_at: datetime | None = _time(default=None)
    telegram_message_id: int | None = None
    last_error: str | None = None
    # Set on a row that edits an earlier message (the row with this id) in
    # place, e.g. a task message whose step is done: its buttons go and a
    # line says who finished it. A plain id, not a foreign key: the earlier
    # row is only read when this one is sent.
    edits_id: int | None = None


class InboxUpdate(SQLModel, table=True):
    """A Telegram update as received, stored before Telegram is told it
    arrived (bot/inbox.py): handled from here, marked done in the commit of
    the command it asked for, and kept a while after so a redelivery is
    recognised and counted instead of handled twice."""

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # The update as Telegram sent it; emptied once done (what it asked for is
    # in the records, and a person's words are not kept twice).
    payload: dict[str, Any] | None = _json(default=None)
    received_at: datetime = _time()
    done_at: datetime | None = _time(default=None)
    # Its handling raised (the person was told), or it was begun again at
    # start too often: not begun again at start, handled if redelivered.
    failed_at: datetime | None = _time(default=None)
    duplicates: int = 0  # redeliveries received after it was stored
    restarts: int = 0  # times a start found it unfinished and handled it again


class PendingInput(SQLModel, table=True):
    """The one question the bot waits for a person to answer (a note, a
    meeting time, a file for a task); asking another replaces it."""

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    kind: str
    payload: dict[str, Any] = _json(default_factory=dict)
    created_at: datetime = _time()
    # The message that asked it: the answer is written there (an edit).
    prompt_message_id: int | None = None


class HeldFiles(SQLModel, table=True):
    """A file, or the pages of one album, sent without a clear destination:
    kept while the bot asks where it goes. Apart from PendingInput, so a new
    question never drops files; one row per group, each with its own buttons."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    batch: str | None = None  # Telegram's media_group_id for an album
    files: list[dict[str, Any]] = _json(default_factory=list)
    created_at: datetime = _time()


class SopDefinition(SQLModel, table=True):
    """An SOP definition as a run started with it, keyed by its fingerprint
    (Run.sop_version); runs on the same definition share one row. The YAML
    file may change while runs are open; a run keeps its own rules."""

    fingerprint: str = Field(primary_key=True)
    sop_key: str = Field(index=True)
    version: str
    # The validated model as JSON (Sop.model_dump_json): the very text the
    # fingerprint hashes, so an auditor can check one against the other.
    definition: str = Field(sa_type=Text)
    created_at: datetime = _time()


class LetterCounter(SQLModel, table=True):
    """The last letter number given, per office and year: drawn by one
    atomic UPDATE ... RETURNING (bot/documents/numbering.py)."""

    office: str = Field(primary_key=True)
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int = 0


class LetterNumberState(StrEnum):
    drawn = "drawn"  # given to a run's letter, not yet sent
    used = "used"  # the letter went out with it
    replaced = "replaced"  # the sekretaris gave another number: this one stays used up


class LetterNumber(SQLModel, table=True):
    """A letter number given out: never given twice (the unique constraint),
    kept with its run even when the run is cancelled or the number replaced."""

    __table_args__ = (UniqueConstraint("office", "year", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    office: str
    year: int
    number: int
    text: str  # as written on the letter, e.g. 000.1.2/7/Bakesbangpol/2026
    run_id: int = Field(foreign_key="run.id", index=True)
    # One number per step opening: a redelivered or retried opening finds it.
    run_step_id: int = Field(foreign_key="runstep.id", unique=True)
    issued_at: datetime = _time()
    state: LetterNumberState = LetterNumberState.drawn
