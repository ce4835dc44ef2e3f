"""Plain values the engine hands out: tasks, statuses, receipts.

Nothing here touches the database or Telegram; handlers render these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.models import (
    AssignmentState,
    RunStep,
    StoredFile,
)
from bot.verbs import Verb

ADMIN = "admin"
MAX_NOTE = 1000
MAX_TITLE = 200
OWING = (AssignmentState.open, AssignmentState.returned)


@dataclass(frozen=True)
class IncomingFile:
    """A file as received, before it is stored: its bytes, or a file on disk
    (a large file is never read into memory whole)."""

    data: bytes | Path
    original_name: str
    mime_type: str
    kind: str = "document"  # document | photo
    telegram_file_id: str | None = None
    batch: str | None = None  # album id: pages sent together form one version

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else self.data.stat().st_size


@dataclass(frozen=True)
class TaskAction:
    """Something a person can do now: a verb and the ids it acts on."""

    verb: Verb
    args: tuple[int, ...]
    label: str | None = None  # from the SOP file (a decision's outcome label)
    icon: str | None = None  # and its emoji

    def as_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb.value,
            "args": list(self.args),
            "label": self.label,
            "icon": self.icon,
        }


@dataclass
class Task:
    run_id: int
    run_title: str
    run_step_id: int
    number: int
    step_key: str
    uraian: str
    action: str
    due_at: datetime | None
    opened_at: datetime | None
    waktu: int
    assignment_id: int | None = None
    unit_id: int | None = None
    unit_name: str | None = None
    state: str = "open"
    note: str | None = None
    actions: list[TaskAction] = field(default_factory=list)
    # The holder may hand this task to a colleague (Limpahkan) now.
    can_delegate: bool = False
    # The bot's draft for the step, offered with its button (/tugas).
    draft_name: str | None = None


@dataclass
class StepStatus:
    run_step_id: int
    number: int
    key: str
    uraian: str
    actors: list[str]
    state: str
    iteration: int
    waktu: int
    opened_at: datetime | None
    due_at: datetime | None
    done_at: datetime | None
    used_minutes: float | None
    late_minutes: float | None
    pending_units: list[str] = field(default_factory=list)
    # Open and owed, but nobody holds it: roles, and units without members.
    unstaffed: list[str] = field(default_factory=list)
    units_without_members: list[str] = field(default_factory=list)
    # Who holds the step, once it has opened: per assignment, the people's
    # names and what they act as (the unit for per-unit steps, else the role).
    holders: list[Holder] = field(default_factory=list)


@dataclass(frozen=True)
class Delegate:
    """Someone a task may be handed to: a colleague who could hold it."""

    member_id: int
    name: str
    role_name: str
    unit_name: str | None


@dataclass(frozen=True)
class Holder:
    label: str
    names: tuple[str, ...]


@dataclass
class RunStatus:
    run_id: int
    title: str
    sop_name: str
    state: str
    started_at: datetime
    steps: list[StepStatus]
    reminders_paused: bool = False

    def glance(self) -> Glance:
        """What /status shows at first: the steps that matter now (the open
        ones, late or not, and the next one to open) and the rest counted."""
        shown = [st for st in self.steps if st.state == "open"]
        last_open = max((self.steps.index(st) for st in shown), default=None)
        next_step = None
        if last_open is not None:
            next_step = next(
                (st for st in self.steps[last_open + 1 :] if st.state == "waiting"), None
            )
        rest = [st for st in self.steps if st not in shown and st is not next_step]
        return Glance(
            shown=shown,
            next_step=next_step,
            done=sum(st.state == "done" for st in rest),
            late_done=[st.number for st in rest if st.state == "done" and st.late_minutes],
            waiting=sum(st.state == "waiting" for st in rest),
            skipped=sum(st.state == "skipped" for st in rest),
            returned=sum(st.state == "returned" for st in rest),
        )


@dataclass(frozen=True)
class Glance:
    """A run at a glance (RunStatus.glance): the steps shown one a line, and
    how many of the others are in each state; the numbers of finished steps
    that ended late."""

    shown: list[StepStatus]
    next_step: StepStatus | None
    done: int
    late_done: list[int]
    waiting: int
    skipped: int
    returned: int


@dataclass
class UnitDelivery:
    assignment_id: int
    unit_id: int
    unit_name: str
    state: str
    file: StoredFile | None
    versions: int
    has_members: bool = True
    # Every page of the latest version (one for a single file).
    pages: list[StoredFile] = field(default_factory=list)


@dataclass
class Receipt:
    file: StoredFile
    run_title: str
    step_number: int
    unit_name: str | None
    step_closed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    # The same bytes as the current version: nothing was stored.
    duplicate: bool = False
    # A page of an album: how many pages of it have arrived so far.
    page: int | None = None


@dataclass
class Closure:
    """What closing units did: the units closed now, whether that finished
    the step, and the units still awaited otherwise."""

    step: RunStep
    units: list[str]
    step_done: bool
    waiting: list[str]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
