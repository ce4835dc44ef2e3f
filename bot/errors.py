"""Typed refusals from the domain.

Each has a `code` that the bot maps to an Indonesian template
(templates/errors/<code>.html.j2); `context` carries the values it shows.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    code = "error"

    def __init__(self, detail: str = "", **context: Any) -> None:
        self.detail = detail
        self.context = context
        super().__init__(detail or self.code)


class NotEnrolled(EngineError):
    code = "not_enrolled"


class NotAllowed(EngineError):
    code = "not_allowed"


class WrongUnit(EngineError):
    code = "wrong_unit"


class StepNotOpen(EngineError):
    code = "step_not_open"


class AlreadyDone(EngineError):
    code = "already_done"


class RunClosed(EngineError):
    code = "run_closed"


class NotFound(EngineError):
    code = "not_found"


class NoteRequired(EngineError):
    code = "note_required"


class FilesRequired(EngineError):
    code = "files_required"


class FileRejected(EngineError):
    """`reason` is one of: empty, type, too_big."""

    code = "file_rejected"


class InvalidInput(EngineError):
    code = "invalid_input"


class AmbiguousUnit(EngineError):
    """The member belongs to several units; `units` lists (id, name)."""

    code = "ambiguous_unit"


class InvitationInvalid(EngineError):
    """`reason` is one of: unknown, used, expired, revoked."""

    code = "invitation_invalid"


class HeldGone(EngineError):
    """A held file's button pressed after the file was placed, cancelled or
    let go (held files expire after a day)."""

    code = "held_gone"


class Delegated(EngineError):
    """The task was handed to someone else (Limpahkan): `to` holds it now,
    `by` handed it over at `at`; `by_you` when the one asking did."""

    code = "delegated"


class DelegateRefused(EngineError):
    """The chosen person could not hold the task: only `role` (of `unit`)."""

    code = "delegate_refused"


class OutsideOfficeHours(EngineError):
    """A meeting time outside the office calendar's days or hours: asked to
    confirm before the invitations go out. `reason`, `starts_at` and the
    calendar's `holiday` or `opens`/`closes` say why."""

    code = "outside_office_hours"
