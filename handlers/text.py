"""Typed text: the answer to a question the bot asked (kept in the
database), a reply to a task message, or a message out of turn.

`ANSWERS` is the one table from a kind of question (bot/pending.py) to what
its answer does; every kind has its entry (tests/test_pending.py checks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from telegram import Update

from bot.chat import SopContext, keyboard
from bot.errors import EngineError, InvalidInput, OutsideOfficeHours
from bot.members import MemberInfo
from bot.outbox import SentMessage
from bot.pending import (
    AlbumFor,
    CloseReason,
    FileFor,
    MeetingConfirm,
    MeetingTime,
    NoteFor,
    NoteKept,
    Outdated,
    Question,
    ReturnNote,
)
from bot.verbs import Verb
from bot.views import Task, TaskAction
from handlers import actions
from handlers.common import answer_in_place, enrolled, reply
from handlers.parsing import parse_meeting
from handlers.uploads import step_of_reply


@enrolled
async def on_text(update: Update, context: SopContext, member: MemberInfo) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    svc = context.services
    text = message.text.strip()
    question = await svc.waiting.get(member.id)
    if question is None:
        await unasked(update, context, member, text)
        return
    try:
        await ANSWERS[type(question)](update, context, member, question, text)
    except EngineError as exc:
        if exc.code in STALE:
            # The question no longer stands (someone else acted, the run ended).
            await svc.waiting.clear(member.id)
        raise


# Refusals after which what the bot was waiting for no longer makes sense.
STALE = {
    "already_done",
    "run_closed",
    "not_allowed",
    "step_not_open",
    "not_found",
    "wrong_unit",
    "not_enrolled",
}


async def unasked(update: Update, context: SopContext, member: MemberInfo, text: str) -> None:
    """Text when no question stands: a reply to a task message belongs to
    that task; anything else is out of turn (or files wait for a choice)."""
    message = update.effective_message
    assert message is not None
    target = step_of_reply(message)
    if target is not None:
        await answer_task(update, context, member, *target, text=text)
        return
    held = await actions.held_names(context, member)
    await reply(update, context, "expecting_choice" if held else "out_of_turn", held=held)


# ------------------------------------------------------- answers, by question


async def _note(
    update: Update, context: SopContext, member: MemberInfo, q: NoteFor, text: str
) -> None:
    if q.outcome is not None:
        await actions.decide(update, context, member, q.run_step_id, q.outcome, text)
    else:
        await actions.complete(update, context, member, q.run_step_id, text)


async def _return_note(
    update: Update, context: SopContext, member: MemberInfo, q: ReturnNote, text: str
) -> None:
    svc = context.services
    stored = await svc.engine.collection.review(member.id, q.file_id, accept=False, note=text)
    prompt = await svc.waiting.prompt_of(member.id)
    await svc.waiting.clear(member.id)
    await answer_in_place(
        update,
        context,
        prompt,
        "reviewed_ack",
        accepted=False,
        name=stored.original_name,
        note=text,
        pages=len(await svc.engine.queries.pages(stored.id or 0)),
    )


async def _meeting(
    update: Update,
    context: SopContext,
    member: MemberInfo,
    q: MeetingTime | MeetingConfirm,
    text: str,
) -> None:
    """The time and place; under a confirmation, a new time instead of the odd one."""
    await schedule(update, context, member, q.run_step_id, text)


async def _close_reason(
    update: Update, context: SopContext, member: MemberInfo, q: CloseReason, text: str
) -> None:
    svc = context.services
    closure = await svc.engine.collection.close(
        member.id, q.run_step_id, text, unit_id=q.unit_id or None
    )
    prompt = await svc.waiting.prompt_of(member.id)
    await svc.waiting.clear(member.id)
    await answer_in_place(
        update,
        context,
        prompt,
        "closed_ack",
        number=closure.step.number,
        reason=text.strip(),
        units=closure.units,
        step_done=closure.step_done,
        waiting=closure.waiting,
    )


async def _note_kept(
    update: Update, context: SopContext, member: MemberInfo, q: NoteKept, text: str
) -> None:
    """Another note for the task: it replaces the one kept."""
    task = await context.services.engine.rules.authorize(member.id, q.run_step_id)
    await keep_note(update, context, member, task, text)


async def _file_awaited(
    update: Update, context: SopContext, member: MemberInfo, q: FileFor, text: str
) -> None:
    await reply(update, context, "expecting_file")


async def _album_over(
    update: Update, context: SopContext, member: MemberInfo, q: AlbumFor, text: str
) -> None:
    """An album in flight asks nothing: text means it is over."""
    await context.services.waiting.clear(member.id)
    await unasked(update, context, member, text)


async def _outdated(
    update: Update, context: SopContext, member: MemberInfo, q: Outdated, text: str
) -> None:
    """A question from an older version: forgotten, and said to be out of turn."""
    await context.services.waiting.clear(member.id)
    await reply(update, context, "out_of_turn")


Answer = Callable[[Update, SopContext, MemberInfo, Any, str], Awaitable[None]]

ANSWERS: dict[type[Question], Answer] = {
    NoteFor: _note,
    NoteKept: _note_kept,
    ReturnNote: _return_note,
    MeetingTime: _meeting,
    MeetingConfirm: _meeting,
    CloseReason: _close_reason,
    FileFor: _file_awaited,
    AlbumFor: _album_over,
    Outdated: _outdated,
}


# ------------------------------------------------------------------ meetings


def meeting_example(context: SopContext) -> datetime:
    """Tomorrow's (next working day's) 09:00, so the example can be typed as is."""
    svc = context.services
    return svc.calendar.next_working_day(svc.clock.now())


async def schedule(
    update: Update, context: SopContext, member: MemberInfo, run_step_id: int, text: str
) -> None:
    parsed = parse_meeting(text, context.texts.tz)
    if parsed is None:
        raise InvalidInput("meeting_format", example=meeting_example(context))
    starts_at, place = parsed
    await set_meeting(update, context, member, run_step_id, starts_at, place)


async def set_meeting(
    update: Update,
    context: SopContext,
    member: MemberInfo,
    run_step_id: int,
    starts_at: datetime,
    place: str,
    *,
    confirmed: bool = False,
) -> None:
    """Schedule the meeting; a time the engine finds outside office days or
    hours is asked about first (Ya, tetap / Ubah), nothing sent meanwhile."""
    svc = context.services
    try:
        meeting = await svc.engine.steps.schedule_meeting(
            member.id, run_step_id, starts_at, place, outside_hours_ok=confirmed
        )
    except OutsideOfficeHours as exc:
        await svc.waiting.set(member.id, MeetingConfirm(run_step_id, starts_at, place))
        choices = [
            TaskAction(Verb.mok, (run_step_id,)),
            TaskAction(Verb.mtg, (run_step_id,), label="change"),
        ]
        await reply(
            update,
            context,
            "confirm_meeting_time",
            keyboard(context.texts, choices),
            **exc.context,
        )
        return
    prompt = await svc.waiting.prompt_of(member.id)
    await svc.waiting.clear(member.id)
    await answer_in_place(
        update, context, prompt, "meeting_ack", starts_at=meeting.starts_at, place=meeting.place
    )


# --------------------------------------------------------- replies to a task


async def answer_task(
    update: Update,
    context: SopContext,
    member: MemberInfo,
    run_step_id: int,
    unit_id: int | None = None,
    *,
    text: str,
) -> None:
    """A text sent as a reply to a task message belongs to that task."""
    task = await context.services.engine.rules.authorize(member.id, run_step_id, unit_id=unit_id)
    if task.action == "meeting":
        await schedule(update, context, member, run_step_id, text)
    elif task.action in ("confirm", "distribute", "decide"):
        await keep_note(update, context, member, task, text)
    else:
        await reply(
            update, context, "expecting_file" if task.action == "collect" else "use_buttons"
        )


async def keep_note(
    update: Update, context: SopContext, member: MemberInfo, task: Task, text: str
) -> None:
    """Hold a typed note for the task; it is used when a button is pressed,
    so a casual reply never finishes a step by itself."""
    svc = context.services
    await svc.waiting.set(member.id, NoteKept(task.run_step_id, text))
    markup = keyboard(context.texts, task.actions)
    shown = {"number": task.number, "note": text}
    message = await reply(update, context, "note_saved", markup, **shown)
    if message is None:
        return
    # The answer carries the task's buttons: kept as a sent message of its
    # step, so that they go when the step is settled, as a task message's
    # do (and at once if it was settled while the answer was on its way).
    kept = SentMessage.about(
        message.message_id,
        task,
        key=f"note_saved:{message.chat.id}:{message.message_id}",
        member_id=member.id,
        template="note_saved",
        context=shown,
    )
    await svc.engine.keep([kept])
