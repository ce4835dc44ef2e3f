"""What a person can do now, as plain values: the buttons of a task, a
review, a meeting invitation. The verbs come from the one table in
`bot/verbs.py`, which the handlers register and the labels read too.
"""

from __future__ import annotations

from bot.models import Assignment, Run, RunStep, StepState
from bot.sop import Action, Step
from bot.verbs import Verb
from bot.views import OWING, Task, TaskAction


def upload_action(run_step_id: int, unit_id: int | None) -> TaskAction:
    """The upload button names the unit too: a member of two units has two
    tasks on one step, and each task message must say which one it is. The
    unit is a hint for finding the assignment, never a permission."""
    return TaskAction(Verb.up, (run_step_id, unit_id) if unit_id else (run_step_id,))


def draft_action(run_step_id: int, file_id: int, kind: str | None) -> TaskAction:
    """Use the bot's draft (bot/run/drafts.py) as the step's document; the
    label is the draft's kind, so the button can say what it is (a letter)."""
    return TaskAction(Verb.use, (run_step_id, file_id), kind)


def follow_actions(run_step_id: int) -> list[TaskAction]:
    """A reviewer's view of a collection: see the units' files, close units."""
    return [TaskAction(Verb.view, (run_step_id,)), TaskAction(Verb.cls, (run_step_id,))]


def review_actions(file_id: int) -> list[TaskAction]:
    return [TaskAction(Verb.acc, (file_id,)), TaskAction(Verb.ret, (file_id,))]


def rsvp_actions(meeting_id: int) -> list[TaskAction]:
    return [TaskAction(Verb.rsvp, (meeting_id, 1)), TaskAction(Verb.rsvp, (meeting_id, 0))]


def step_actions(step: Step, rs: RunStep, a: Assignment | None) -> list[TaskAction]:
    """The buttons of a step's task, by the step's action in the SOP file."""
    rid = rs.id or 0
    up = upload_action(rid, a.unit_id if a is not None else None)
    match step.action:
        case Action.confirm:
            verbs = [] if step.files == "none" else [up]
            return [*verbs, TaskAction(Verb.ok, (rid,))]
        case Action.decide:
            return [
                TaskAction(Verb.dec, (rid, i), o.label, o.icon) for i, o in enumerate(step.outcomes)
            ]
        case Action.distribute:
            return [TaskAction(Verb.send, (rid,))]
        case Action.meeting:
            return [TaskAction(Verb.mtg, (rid,))]
        case Action.collect:
            return [up]
        case Action.validate:
            return follow_actions(rid)
    return []


def task_view(
    run: Run, step: Step, rs: RunStep, a: Assignment | None, unit_name: str | None
) -> Task:
    """A task as the handlers show it: the step, the assignment, its buttons."""
    return Task(
        run_id=run.id or 0,
        run_title=run.title,
        run_step_id=rs.id or 0,
        number=step.number,
        step_key=step.key,
        uraian=step.uraian,
        action=step.action.value,
        due_at=rs.due_at,
        opened_at=rs.opened_at,
        waktu=step.waktu,
        assignment_id=a.id if a else None,
        unit_id=a.unit_id if a else None,
        unit_name=unit_name,
        state=a.state.value if a else rs.state.value,
        note=a.note if a else None,
        actions=step_actions(step, rs, a),
        can_delegate=a is not None and a.state in OWING and rs.state == StepState.open,
    )
