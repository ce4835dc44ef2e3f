"""Shared steps of the conversation: finishing a step, asking for a note,
storing a file. Buttons, replies and files all end up here."""

from __future__ import annotations

from telegram import Update

from bot.engine import IncomingFile
from bot.errors import NoteRequired
from bot.members import MemberInfo
from handlers.common import Context, reply, services


async def complete(
    update: Update, context: Context, member: MemberInfo, run_step_id: int, note: str | None = None
) -> bool:
    """Finish the step; False when a note must be asked for first."""
    svc = services(context)
    try:
        step = await svc.engine.complete(member.id, run_step_id, note)
    except NoteRequired:
        await svc.waiting.set(member.id, "note", verb="ok", run_step_id=run_step_id)
        await reply(update, context, "prompt_note")
        return False
    await svc.waiting.clear(member.id)
    await reply(update, context, "step_done_ack", number=step.number, note=step.note)
    return True


async def decide(
    update: Update,
    context: Context,
    member: MemberInfo,
    run_step_id: int,
    outcome: int,
    note: str | None = None,
) -> bool:
    """Record the decision; False when a note must be asked for first."""
    svc = services(context)
    try:
        step = await svc.engine.decide(member.id, run_step_id, outcome, note)
    except NoteRequired:
        await svc.waiting.set(
            member.id, "note", verb="dec", run_step_id=run_step_id, outcome=outcome
        )
        await reply(update, context, "prompt_note")
        return False
    await svc.waiting.clear(member.id)
    await reply(
        update, context, "decision_ack", number=step.number, outcome=step.outcome, note=step.note
    )
    return True


async def store_file(
    update: Update,
    context: Context,
    member: MemberInfo,
    run_step_id: int,
    held: dict[str, object],
    unit_id: int | None = None,
) -> None:
    """Check, download and record one file; answer with a receipt."""
    svc = services(context)
    name, mime, kind = str(held["name"]), str(held["mime"]), str(held["kind"])
    size = held.get("size")
    # Telegram may omit the size; then only the downloaded bytes are checked.
    await svc.engine.check_upload(
        member.id,
        run_step_id,
        name=name,
        mime=mime,
        kind=kind,
        size=int(size) if size is not None else None,  # type: ignore[call-overload]
        unit_id=unit_id,
    )
    tg_file = await context.bot.get_file(str(held["file_id"]))
    data = bytes(await tg_file.download_as_bytearray())
    receipt = await svc.engine.upload(
        member.id,
        run_step_id,
        IncomingFile(
            data,
            name,
            mime,
            kind=kind,
            telegram_file_id=str(held["file_id"]),
            batch=str(held["batch"]) if held.get("batch") else None,
        ),
        unit_id=unit_id,
    )
    f = receipt.file
    await reply(
        update,
        context,
        "receipt",
        name=f.original_name,
        size=f.size,
        sha256=f.sha256,
        at=f.received_at,
        version=f.version,
        unit=receipt.unit_name,
        run_title=receipt.run_title,
        number=receipt.step_number,
        closed=receipt.step_closed,
        checks=receipt.checks,
    )
