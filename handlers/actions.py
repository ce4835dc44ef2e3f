"""Shared steps of the conversation: finishing a step, asking for a note,
storing a file. Buttons, replies and files all end up here."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.error import BadRequest

from bot.chat import SopContext
from bot.errors import FileRejected, NoteRequired
from bot.members import MemberInfo
from bot.outbox import SentMessage
from bot.pending import AlbumFor, HeldFile, HeldGroup, NoteFor
from bot.run.albums import album_receipt_key, receipt_key
from bot.views import IncomingFile, Receipt, iso
from handlers.common import acknowledge, ask, rearm_deadlines, reply


async def current_held(context: SopContext, member: MemberInfo) -> list[HeldGroup]:
    """The person's held files; any held past a day are let go first (the
    person is told, the log records it), so a late press never stores them."""
    return await context.services.waiting.current(member.id)


async def held_names(context: SopContext, member: MemberInfo) -> list[str]:
    """Names of the files held now, to say in a new question that they
    still wait for their own choice."""
    return [n for g in await current_held(context, member) for n in g.names]


async def cancel_all(
    update: Update, context: SopContext, member: MemberInfo, *, files: bool = True
) -> None:
    """/batal: forget the question the bot was asking and let go of any held
    files, saying each separately (the files by name). A Batal button under
    a question (files=False) cancels the question only; held files are said
    to wait still."""
    svc = context.services
    await current_held(context, member)  # let expired ones go, told
    had = await svc.waiting.clear(member.id)
    dropped = await svc.waiting.drop_held(member.id) if files else []
    await reply(
        update,
        context,
        "cancelled_input",
        had=had is not None and not isinstance(had, AlbumFor),  # an album in flight asks nothing
        kind=had.kind if had is not None else "",
        dropped=[n for g in dropped for n in g.names],
        held=[] if files else await held_names(context, member),
    )


async def complete(
    update: Update,
    context: SopContext,
    member: MemberInfo,
    run_step_id: int,
    note: str | None = None,
) -> bool | str:
    """Finish the step; False when a note must be asked for first."""
    svc = context.services
    try:
        step = await svc.engine.steps.complete(member.id, run_step_id, note)
    except NoteRequired as exc:
        await svc.waiting.set(member.id, NoteFor(run_step_id))
        await ask(
            update,
            context,
            member.id,
            "prompt_note",
            prompt=exc.context.get("prompt"),
            held=await held_names(context, member),
        )
        return False
    prompt = await svc.waiting.prompt_of(member.id)
    await svc.waiting.clear(member.id)
    return await acknowledge(
        update, context, "step_done_ack", prompt, number=step.number, note=step.note
    )


async def decide(
    update: Update,
    context: SopContext,
    member: MemberInfo,
    run_step_id: int,
    outcome: int,
    note: str | None = None,
) -> bool | str:
    """Record the decision; False when a note must be asked for first."""
    svc = context.services
    try:
        step = await svc.engine.steps.decide(member.id, run_step_id, outcome, note)
    except NoteRequired as exc:
        await svc.waiting.set(member.id, NoteFor(run_step_id, outcome))
        await ask(
            update,
            context,
            member.id,
            "prompt_note",
            prompt=exc.context.get("prompt"),
            held=await held_names(context, member),
        )
        return False
    prompt = await svc.waiting.prompt_of(member.id)
    await svc.waiting.clear(member.id)
    labels = await svc.engine.queries.outcome_labels(step.run_id)
    return await acknowledge(
        update,
        context,
        "decision_ack",
        prompt,
        number=step.number,
        outcome=step.outcome,
        label=labels.get(f"{step.number}:{step.outcome}"),
        note=step.note,
    )


def _too_big(context: SopContext) -> FileRejected:
    limit = context.services.engine.rules.max_file_bytes or 0
    return FileRejected("too_big", limit_mb=limit // (1024 * 1024))


async def download(context: SopContext, file_id: str) -> tuple[Path, bool]:
    """The file on this disk, and whether it is a temporary copy to remove.

    Never the whole file in memory: a local Bot API server gives the path of
    its own copy, read in place; from Telegram's servers (at most 20 MB) the
    file goes to a temporary file under DATA_DIR. A file over the limit is
    refused before it is fetched, also when the update did not say its size.
    """
    svc = context.services
    try:
        tg_file = await context.bot.get_file(file_id)
    except BadRequest as exc:
        if "too big" in exc.message.lower():  # Telegram's own 20 MB limit
            raise _too_big(context) from exc
        raise
    if tg_file.file_size is not None and svc.engine.rules.check_file_size(tg_file.file_size):
        raise _too_big(context) if tg_file.file_size > 0 else FileRejected("empty")
    # python-telegram-bot makes a download URL of the path, except when it
    # names a file on this machine (a local Bot API server's own copy).
    if tg_file.file_path and Path(tg_file.file_path).is_absolute():
        return Path(tg_file.file_path), False
    tmp = svc.storage.temporary()
    try:
        await tg_file.download_to_drive(custom_path=tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, True


async def store_file(
    update: Update,
    context: SopContext,
    member: MemberInfo,
    run_step_id: int,
    held: HeldFile,
    unit_id: int | None = None,
) -> None:
    """Check, download and record one file; answer with a receipt."""
    svc = context.services
    # Telegram may omit the size; then only the downloaded bytes are checked.
    await svc.engine.rules.check_upload(
        member.id,
        run_step_id,
        name=held.name,
        kind=held.kind,
        size=held.size,
        unit_id=unit_id,
    )
    source, ours = await download(context, held.file_id)
    try:
        receipt = await svc.engine.collection.upload(
            member.id,
            run_step_id,
            IncomingFile(
                source,
                held.name,
                held.mime,
                kind=held.kind,
                telegram_file_id=held.file_id,
                batch=held.batch,
            ),
            unit_id=unit_id,
        )
    finally:
        if ours:
            source.unlink(missing_ok=True)
    f = receipt.file
    if receipt.duplicate:
        await reply(
            update,
            context,
            "file_duplicate",
            name=f.original_name,
            version=f.version,
            at=f.received_at,
            unit=receipt.unit_name,
        )
        return
    values: dict[str, Any] = {
        "name": f.original_name,
        "size": f.size,
        "sha256": f.sha256,
        "at": f.received_at,
        "version": f.version,
        "unit": receipt.unit_name,
        "run_title": receipt.run_title,
        "number": receipt.step_number,
        "closed": receipt.step_closed,
        "checks": receipt.checks,
        "page": receipt.page,
    }
    await send_receipt(update, context, member, receipt, values)
    if receipt.page is not None:
        # The album counts as complete a quiet moment after its last page:
        # the deadline timer is set again so that it settles then.
        rearm_deadlines(context)


async def send_receipt(
    update: Update,
    context: SopContext,
    member: MemberInfo,
    receipt: Receipt,
    values: dict[str, Any],
) -> None:
    """The receipt of a delivery, kept as a sent message so that later news
    is written under it (an edit, no alert): the acceptance of the file, or
    an album's completion. An album has one receipt, sent with its first
    page and edited as each further page arrives."""
    chat = update.effective_chat
    if chat is None:
        return
    svc = context.services
    f = receipt.file
    album = receipt.page is not None
    template = "album_receipt" if album else "receipt"
    key = album_receipt_key(f.assignment_id or 0, f.version) if album else receipt_key(f.id or 0)
    shown = {**values, "at": iso(f.received_at)}
    earlier = await svc.outbox.sent_row(key) if album else None
    if earlier is not None and earlier.telegram_message_id is not None:
        with suppress(BadRequest):  # too old or unchanged: the record still counts
            await context.bot.edit_message_text(
                context.texts.render(template, **shown),
                chat_id=chat.id,
                message_id=earlier.telegram_message_id,
            )
        await svc.outbox.update_context(earlier.id or 0, shown)
        return
    message = None
    for part in context.texts.render_parts(template, **shown):
        message = await context.bot.send_message(chat.id, part)
    if message is None:
        return
    await svc.outbox.record_sent(
        SentMessage.about(
            message.message_id, f, key=key, member_id=member.id, template=template, context=shown
        )
    )
