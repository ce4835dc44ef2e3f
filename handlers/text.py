"""Typed text: the answer to a question the bot asked (kept in the
database), a reply to a task message, or a message out of turn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import Update

from bot.errors import EngineError, InvalidInput, OutsideOfficeHours
from bot.members import MemberInfo
from bot.views import Task
from handlers import actions
from handlers.common import Context, enrolled, keyboard, reply, services, texts
from handlers.parsing import parse_meeting
from handlers.uploads import step_of_reply


@enrolled
async def on_text(update: Update, context: Context, member: MemberInfo) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    svc = services(context)
    text = message.text.strip()
    pending = await svc.waiting.get(member.id)
    if pending is not None and pending.kind == "album":
        await svc.waiting.clear(member.id)  # the album is over
        pending = None
    if pending is None:
        target = step_of_reply(message)
        if target is not None:
            await answer_task(update, context, member, *target, text=text)
            return
        held = await actions.held_names(context, member)
        await reply(update, context, "expecting_choice" if held else "out_of_turn", held=held)
        return
    try:
        await answer_pending(update, context, member, pending.kind, pending.payload, text)
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


async def answer_pending(
    update: Update, context: Context, member: MemberInfo, kind: str, data: dict[str, Any], text: str
) -> None:
    """Text that answers what the bot asked for."""
    svc = services(context)
    match kind:
        case "note":
            if data.get("verb") == "dec":
                await actions.decide(
                    update, context, member, int(data["run_step_id"]), int(data["outcome"]), text
                )
            else:
                await actions.complete(update, context, member, int(data["run_step_id"]), text)
        case "return":
            stored = await svc.engine.review(
                member.id, int(data["file_id"]), accept=False, note=text
            )
            await svc.waiting.clear(member.id)
            await reply(
                update,
                context,
                "reviewed_ack",
                accepted=False,
                name=stored.original_name,
                note=text,
                pages=len(await svc.engine.pages(stored.id or 0)),
            )
        case "meeting" | "meeting_confirm":  # a new time instead of confirming the odd one
            await schedule(update, context, member, int(data["run_step_id"]), text)
        case "close":
            unit_id = data.get("unit_id")
            closure = await svc.engine.close_step(
                member.id,
                int(data["run_step_id"]),
                text,
                unit_id=int(unit_id) if unit_id else None,
            )
            await svc.waiting.clear(member.id)
            await reply(
                update,
                context,
                "closed_ack",
                number=closure.step.number,
                reason=text.strip(),
                units=closure.units,
                step_done=closure.step_done,
                waiting=closure.waiting,
            )
        case "note_ready":
            task = await svc.engine.authorize(member.id, int(data["run_step_id"]))
            await keep_note(update, context, member, task, text)
        case "upload":
            await reply(update, context, "expecting_file")
        case _:
            await svc.waiting.clear(member.id)
            await reply(update, context, "out_of_turn")


def meeting_example(context: Context) -> datetime:
    """Tomorrow's (next working day's) 09:00, so the example can be typed as is."""
    svc = services(context)
    return svc.calendar.next_working_day(svc.clock.now())


async def schedule(
    update: Update, context: Context, member: MemberInfo, run_step_id: int, text: str
) -> None:
    svc = services(context)
    parsed = parse_meeting(text, svc.texts.tz)
    if parsed is None:
        raise InvalidInput("meeting_format", example=meeting_example(context))
    starts_at, place = parsed
    await set_meeting(update, context, member, run_step_id, starts_at, place)


async def set_meeting(
    update: Update,
    context: Context,
    member: MemberInfo,
    run_step_id: int,
    starts_at: datetime,
    place: str,
    *,
    confirmed: bool = False,
) -> None:
    """Schedule the meeting; a time the engine finds outside office days or
    hours is asked about first (Ya, tetap / Ubah), nothing sent meanwhile."""
    svc = services(context)
    try:
        meeting = await svc.engine.schedule_meeting(
            member.id, run_step_id, starts_at, place, outside_hours_ok=confirmed
        )
    except OutsideOfficeHours as exc:
        await svc.waiting.set(
            member.id,
            "meeting_confirm",
            run_step_id=run_step_id,
            starts_at=starts_at.isoformat(),
            place=place,
        )
        actions = [
            {"verb": "mok", "args": [run_step_id]},
            {"verb": "mtg", "args": [run_step_id], "label": "change"},
        ]
        await reply(
            update,
            context,
            "confirm_meeting_time",
            keyboard(texts(context), actions),
            **exc.context,
        )
        return
    await svc.waiting.clear(member.id)
    await reply(update, context, "meeting_ack", starts_at=meeting.starts_at, place=meeting.place)


async def answer_task(
    update: Update,
    context: Context,
    member: MemberInfo,
    run_step_id: int,
    unit_id: int | None = None,
    *,
    text: str,
) -> None:
    """A text sent as a reply to a task message belongs to that task."""
    svc = services(context)
    task = await svc.engine.authorize(member.id, run_step_id, unit_id=unit_id)
    if task.action == "meeting":
        await schedule(update, context, member, run_step_id, text)
    elif task.action in ("confirm", "distribute", "decide"):
        await keep_note(update, context, member, task, text)
    else:
        await reply(
            update, context, "expecting_file" if task.action == "collect" else "use_buttons"
        )


async def keep_note(
    update: Update, context: Context, member: MemberInfo, task: Task, text: str
) -> None:
    """Hold a typed note for the task; it is used when a button is pressed,
    so a casual reply never finishes a step by itself."""
    await services(context).waiting.set(
        member.id, "note_ready", run_step_id=task.run_step_id, note=text
    )
    markup = keyboard(texts(context), [a.as_dict() for a in task.actions])
    await reply(update, context, "note_saved", markup, number=task.number, note=text)
