"""Pydantic models of an SOP definition file.

The format mirrors the SOP-AP table: per step the Uraian Prosedur, the
Pelaksana (actor roles) and the Mutu Baku (kelengkapan, waktu, output,
keterangan), plus what the bot needs to run it: the kind of action and which
step follows each outcome.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class Action(StrEnum):
    confirm = "confirm"  # press Selesai (optionally with files)
    decide = "decide"  # choose one outcome, maybe with a note
    distribute = "distribute"  # send an earlier step's files to roles
    meeting = "meeting"  # set date, time and place; invite; RSVP
    collect = "collect"  # one upload from every unit (fan-out, fan-in)
    validate = "validate"  # accept or return each unit's upload


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reminders(Strict):
    """When to remind and escalate; minutes are working minutes.

    `escalate_after` None means "the step's own waktu again"; each further
    level of escalation waits that long again.
    `repeat_every` None means "once each working day at office opening".
    `escalation_levels` None means "the whole supervisor chain" (e.g.
    perencana -> sekretaris -> kepala_badan is two levels); 0 turns
    escalation off.
    """

    enabled: bool = True
    escalate_after: int | None = Field(default=None, gt=0)
    repeat_every: int | None = Field(default=None, gt=0)
    escalation_levels: int | None = Field(default=None, ge=0)


class WorkbookCheck(Strict):
    """Where a unit's workbook keeps what must be filled in (Excel cells)."""

    sheet: str | None = None
    unit_cell: str | None = Field(default=None, pattern=r"^[A-Z]{1,3}[1-9][0-9]*$")
    header_row: int | None = Field(default=None, gt=0)
    first_row: int = Field(gt=0)
    last_row: int = Field(gt=0)
    label_column: str = Field(pattern=r"^[A-Z]{1,3}$")
    numeric_columns: list[str] = Field(default_factory=list)
    sequence_columns: list[str] = Field(default_factory=list)
    # The unit of measure ("Satuan") of each indicator: the compiled
    # workbook's recap adds up an indicator over the units only within one
    # unit of measure. None: indicators are told apart by their label only.
    measure_column: str | None = Field(default=None, pattern=r"^[A-Z]{1,3}$")


class CoverLetter(Strict):
    """The settings of a step's cover letter (surat pengantar), drafted with
    `draft: letter` and a number from the office's counter; the step's note
    is then the letter's number. The addressee, letterhead and template are
    the office's (office file)."""

    perihal: str = Field(min_length=1, max_length=300)
    sifat: str = "Biasa"
    # Steps whose latest files the letter lists as sent: the first of them
    # that has any (as attach_from); the step's attach_from when unset.
    documents_from: list[str] = Field(default_factory=list)


class Role(Strict):
    name: str
    per_unit: bool = False
    supervisor: str | None = None
    description: str = ""


class Outcome(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    label: str
    next: str | None = None
    note: Literal["none", "optional", "required"] = "none"
    # What the bot asks for when the note is wanted (e.g. "Tuliskan catatan
    # koreksi"); a generic request when unset.
    note_prompt: str | None = Field(default=None, min_length=1, max_length=200)
    # "returned" marks the step as sent back (e.g. a correction), for reports.
    marks: Literal["done", "returned"] = "done"
    # Roles told about this outcome besides the next step's actors.
    notify: list[str] = Field(default_factory=list)
    # Shown before the label on the decision button; by default after `marks`.
    emoji: str | None = Field(default=None, min_length=1, max_length=8)

    @property
    def icon(self) -> str:
        return self.emoji or ("↩️" if self.marks == "returned" else "✅")


DEFAULT_ACCEPT = ["pdf", "xlsx", "xls", "ods", "docx", "doc", "odt", "jpg", "jpeg", "png"]


class Step(Strict):
    number: int = Field(gt=0)
    key: str = Field(pattern=KEY_PATTERN)
    uraian: str = Field(min_length=1)
    actors: list[str] = Field(min_length=1)
    kelengkapan: list[str] = Field(default_factory=list)
    waktu: int = Field(gt=0, description="time standard, in working minutes")
    output: str = ""
    keterangan: str = ""
    petunjuk: str = Field(default="", description="what the actor must do, for the task message")
    action: Action = Action.confirm
    files: Literal["none", "optional", "required"] = "none"
    accept: list[str] = Field(default_factory=lambda: list(DEFAULT_ACCEPT))
    next: str | None = None
    outcomes: list[Outcome] = Field(default_factory=list)
    note: Literal["none", "optional", "required"] = "optional"
    # What the bot asks for when Selesai needs the note (e.g. "Tuliskan nomor
    # surat pengantar"); a generic request when unset.
    note_prompt: str | None = Field(default=None, min_length=1, max_length=200)
    collection: str | None = None
    files_from: str | None = None
    # Steps whose latest files go with this step's task message (first with any).
    attach_from: list[str] = Field(default_factory=list)
    to_roles: list[str] = Field(default_factory=list)
    invitees: list[str] = Field(default_factory=list)
    # The meeting step whose meeting this step is: its due time counts from the
    # meeting's start, and it cannot be finished before the meeting starts.
    after_meeting: str | None = None
    reviewer: str | None = None
    # A document the bot drafts for this step when it opens, offered to its
    # actors with their task (bot/run/drafts.py): "compiled", the accepted
    # workbooks of the collection `draft_from` in one workbook; "archive",
    # the run's files in one ZIP; "letter", the cover letter with its
    # number (its settings in `letter:`).
    draft: Literal["compiled", "archive", "letter"] | None = None
    draft_from: str | None = None
    reminders: Reminders | None = None
    workbook: WorkbookCheck | None = None
    letter: CoverLetter | None = None

    @field_validator("kelengkapan", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("accept")
    @classmethod
    def _lower_ext(cls, value: list[str]) -> list[str]:
        return [ext.lower().lstrip(".") for ext in value]

    def next_steps(self) -> list[str | None]:
        """Every step key this step can lead to (None ends the run)."""
        if self.action == Action.decide:
            return [o.next for o in self.outcomes]
        return [self.next]

    def outcome(self, key: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.key == key), None)


class Sop(Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    name: str
    version: str = "1"
    unit_label: str = "unit"
    legal_basis: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)
    qualifications: list[str] = Field(default_factory=list)
    equipment: list[str] = Field(default_factory=list)
    warning: str = ""
    recording: str = ""
    roles: dict[str, Role]
    reminders: Reminders = Reminders()
    steps: list[Step] = Field(min_length=1)

    @property
    def first(self) -> Step:
        return self.steps[0]

    def step(self, key: str) -> Step:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)

    def reminders_for(self, step: Step) -> Reminders:
        """The SOP's reminder settings with the step's own on top: a step
        overrides only the fields it sets."""
        if step.reminders is None:
            return self.reminders
        own = {name: getattr(step.reminders, name) for name in step.reminders.model_fields_set}
        return self.reminders.model_copy(update=own)

    def outcome_labels(self) -> dict[str, str]:
        """Each decision outcome's label, keyed "step number:outcome key" as
        the history and the report look them up."""
        return {f"{s.number}:{o.key}": o.label for s in self.steps for o in s.outcomes}

    @property
    def total_waktu(self) -> int:
        return sum(step.waktu for step in self.steps)
