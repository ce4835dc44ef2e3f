"""Files from a phone: documents, photos and albums, and what is not a file."""

from __future__ import annotations

import mimetypes
from typing import Any

from telegram import Message, Update

from bot.engine import Task
from bot.errors import FileRejected
from bot.members import MemberInfo
from bot.storage import extension_of
from handlers import actions
from handlers.common import (
    Context,
    button,
    decode,
    enrolled,
    reply,
    services,
    texts,
)

STEP_VERBS = {"ok", "up", "dec", "send", "mtg", "view", "cls"}


def _named(name: str | None, mime: str | None) -> str:
    """Telegram may omit a document's name; give it one with the extension
    its MIME type implies, so the type check still works."""
    name = (name or "").strip() or "dokumen"
    if not extension_of(name) and mime:
        guessed = mimetypes.guess_extension(mime.split(";")[0].strip())
        if guessed:
            name += guessed
    return name


def held_file(message: Message) -> dict[str, Any]:
    """What we need to fetch the file later; for a photo, the largest size."""
    if message.document is not None:
        doc = message.document
        return {
            "file_id": doc.file_id,
            "name": _named(doc.file_name, doc.mime_type),
            "mime": doc.mime_type or "application/octet-stream",
            "kind": "document",
            "size": doc.file_size,
            "batch": message.media_group_id,
        }
    photo = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
    return {
        "file_id": photo.file_id,
        "name": f"foto-{message.message_id}.jpg",
        "mime": "image/jpeg",
        "kind": "photo",
        "size": photo.file_size,
        "batch": message.media_group_id,
    }


def step_of_reply(message: Message) -> int | None:
    """The step a reply belongs to, read from the task message's buttons."""
    replied = message.reply_to_message
    if replied is None or replied.reply_markup is None:
        return None
    for row in replied.reply_markup.inline_keyboard:
        for btn in row:
            parsed = decode(btn.callback_data if isinstance(btn.callback_data, str) else None)
            if parsed and parsed[0] in STEP_VERBS:
                return parsed[1][0]
    return None


@enrolled
async def on_file(update: Update, context: Context, member: MemberInfo) -> None:
    message = update.effective_message
    assert message is not None
    svc = services(context)
    held = held_file(message)
    pending = await svc.waiting.get(member.id)

    target = step_of_reply(message)
    unit_id: int | None = None
    if target is None and pending is not None and pending.kind in ("upload", "album"):
        same_album = pending.kind == "album" and pending.payload.get("batch") == held["batch"]
        if pending.kind == "upload" or same_album:
            target = int(pending.payload["run_step_id"])
            unit_id = pending.payload.get("unit_id")
    if (
        target is None
        and pending is not None
        and pending.kind == "held"
        and held["batch"]
        and pending.payload.get("batch") == held["batch"]
    ):
        # Another page of an album whose destination is being asked.
        files = [*pending.payload["files"], held]
        await svc.waiting.set(member.id, "held", batch=held["batch"], files=files)
        return
    if target is None:
        options = await svc.engine.upload_targets(member.id)
        if not options:
            await reply(update, context, "no_upload_expected")
            return
        if len(options) == 1:
            target, unit_id = options[0].run_step_id, options[0].unit_id
        else:
            await ask_target(update, context, member, options, held)
            return
    await actions.store_file(update, context, member, target, held, unit_id)
    if held["batch"]:
        # The album's other pages follow as separate messages: same destination.
        await svc.waiting.set(
            member.id, "album", batch=held["batch"], run_step_id=target, unit_id=unit_id
        )
    elif pending is not None and pending.kind in ("upload", "album"):
        await svc.waiting.clear(member.id)


async def ask_target(
    update: Update, context: Context, member: MemberInfo, options: list[Task], held: dict[str, Any]
) -> None:
    """Several open tasks take a file: hold it and ask which, with buttons."""
    from telegram import InlineKeyboardMarkup

    svc = services(context)
    t = texts(context)
    # Refuse at once what no option could take (an empty or a 30 MB file).
    reason = svc.engine.check_file_size(int(held["size"] or 0)) if held["size"] is not None else ""
    if reason:
        raise FileRejected(reason, limit_mb=(svc.engine.max_file_bytes or 0) // 2**20)
    await svc.waiting.set(member.id, "held", batch=held["batch"], files=[held])
    rows = []
    for o in options:
        label = t.render("pick_label", number=o.number, unit=o.unit_name, run_title=o.run_title)
        rows.append([button(t, "pick", o.run_step_id, o.unit_id or 0, label=label[:60])])
    rows.append([button(t, "cancel")])
    await reply(update, context, "pick_target", InlineKeyboardMarkup(rows))


@enrolled
async def on_other(update: Update, context: Context, member: MemberInfo) -> None:
    """A sticker, voice note, video, location...: not what any step asks for."""
    raise FileRejected("not_a_file")
