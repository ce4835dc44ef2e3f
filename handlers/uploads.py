"""Files from a phone: documents, photos and albums, and what is not a file."""

from __future__ import annotations

import mimetypes

from telegram import InlineKeyboardMarkup, Message, Update

from bot.chat import SopContext, button
from bot.errors import AmbiguousUnit, FileRejected, HeldGone
from bot.members import MemberInfo
from bot.pending import AlbumFor, FileFor, HeldFile, HeldGroup
from bot.storage import extension_of
from bot.verbs import VERBS, Verb, decode
from bot.views import Task
from handlers import actions
from handlers.common import enrolled, reply


def document_name(name: str | None, mime: str | None) -> str:
    """Telegram may omit a document's name; give it one with the extension
    its MIME type implies, so the type check still works."""
    name = (name or "").strip() or "dokumen"
    if not extension_of(name) and mime:
        guessed = mimetypes.guess_extension(mime.split(";")[0].strip())
        if guessed:
            name += guessed
    return name


def held_file(message: Message) -> HeldFile:
    """What we need to fetch the file later; for a photo, the largest size."""
    if message.document is not None:
        doc = message.document
        return HeldFile(
            file_id=doc.file_id,
            name=document_name(doc.file_name, doc.mime_type),
            mime=doc.mime_type or "application/octet-stream",
            kind="document",
            size=doc.file_size,
            batch=message.media_group_id,
        )
    photo = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
    return HeldFile(
        file_id=photo.file_id,
        name=f"foto-{message.message_id}.jpg",
        mime="image/jpeg",
        kind="photo",
        size=photo.file_size,
        batch=message.media_group_id,
    )


def step_of_reply(message: Message) -> tuple[int, int | None] | None:
    """The task a reply belongs to, read from the task message's buttons:
    its step, and its unit when the upload button names one (a member of two
    units has a task message per unit on the same step)."""
    replied = message.reply_to_message
    if replied is None or replied.reply_markup is None:
        return None
    found: tuple[int, int | None] | None = None
    for row in replied.reply_markup.inline_keyboard:
        for btn in row:
            parsed = decode(btn.callback_data if isinstance(btn.callback_data, str) else None)
            if not parsed or not VERBS[parsed[0]].on_task:
                continue
            verb, args = parsed
            if verb == Verb.up and len(args) == 2:
                return args[0], args[1] or None
            found = found or (args[0], None)
    return found


# ---------------------------------------------------------------- held files
#
# While the bot asks where a file goes, the file is "held": kept in the
# database (bot/pending.py) as a group (a single file, or the pages of one
# album), each answered by its own buttons. Held files live apart from the
# question the bot is asking, so a note, a meeting time or another file asked
# for meanwhile leaves them held and their buttons working.


async def take_held(context: SopContext, member: MemberInfo, group_id: int | None) -> HeldGroup:
    """Remove a held group (the oldest for a question without a group id);
    the other groups stay held. Gone already: refused, saying so."""
    waiting = context.services.waiting
    await waiting.expire_held(member.id)
    group = await waiting.take(member.id, group_id)
    if group is None:
        raise HeldGone()
    return group


@enrolled
async def on_file(update: Update, context: SopContext, member: MemberInfo) -> None:
    message = update.effective_message
    assert message is not None
    svc = context.services
    held = held_file(message)
    pending = await svc.waiting.get(member.id)

    if isinstance(pending, AlbumFor) and pending.batch != held.batch:
        # The sender moved on from an album: it is complete.
        await svc.engine.albums.settle_albums(batch=pending.batch)
    target: int | None = None
    unit_id: int | None = None
    replied = step_of_reply(message)
    if replied is not None:
        target, unit_id = replied
    if target is None and (
        isinstance(pending, FileFor)
        or (isinstance(pending, AlbumFor) and pending.batch == held.batch)
    ):
        target, unit_id = pending.run_step_id, pending.unit_id
    if target is None and held.batch:
        # Another page of an album whose destination is being asked joins it.
        await svc.waiting.expire_held(member.id)
        if await svc.waiting.add_page(member.id, held.batch, held):
            return
    if target is None:
        options = await svc.engine.queries.upload_targets(member.id)
        if not options:
            closed = await svc.engine.queries.closed_for(member.id)
            if closed is not None:
                raise closed
            await reply(update, context, "no_upload_expected")
            return
        if len(options) == 1:
            target, unit_id = options[0].run_step_id, options[0].unit_id
        else:
            await ask_target(update, context, member, options, held)
            return
    try:
        await actions.store_file(update, context, member, target, held, unit_id)
    except AmbiguousUnit as exc:
        # The reply or button named the step but not the unit: ask which.
        await ask_unit(update, context, member, exc, held)
        return
    if held.batch:
        # The album's other pages follow as separate messages: same destination.
        await svc.waiting.set(member.id, AlbumFor(held.batch, target, unit_id))
    elif isinstance(pending, FileFor | AlbumFor):
        await svc.waiting.clear(member.id)


def _check_size(context: SopContext, held: HeldFile) -> None:
    """Refuse at once what no option could take (an empty or a too large file)."""
    rules = context.services.engine.rules
    reason = rules.check_file_size(held.size) if held.size is not None else ""
    if reason:
        raise FileRejected(reason, limit_mb=(rules.max_file_bytes or 0) // 2**20)


async def ask_target(
    update: Update, context: SopContext, member: MemberInfo, options: list[Task], held: HeldFile
) -> None:
    """Several open tasks take a file: hold it and ask which, with buttons."""
    _check_size(context, held)
    earlier = await actions.held_names(context, member)
    group = await context.services.waiting.hold(member.id, held)
    await reply(
        update,
        context,
        "pick_target",
        pick_buttons(context, options, group),
        name=held.name,
        earlier=earlier,
    )


def pick_buttons(
    context: SopContext, options: list[Task], group: HeldGroup
) -> InlineKeyboardMarkup:
    """A button per task that takes the held group, and one to cancel it."""
    t = context.texts
    rows = []
    for o in options:
        label = t.render("pick_label", number=o.number, unit=o.unit_name, run_title=o.run_title)
        pick = button(t, Verb.pick, o.run_step_id, o.unit_id or 0, group.id, label=label[:60])
        rows.append([pick])
    rows.append([button(t, Verb.cancel, group.id)])
    return InlineKeyboardMarkup(rows)


async def remind_held(update: Update, context: SopContext, member: MemberInfo) -> None:
    """Files still waiting for a choice: ask again, each with fresh buttons
    (the first question may have scrolled out of sight). For /tugas."""
    groups = await actions.current_held(context, member)
    if not groups:
        return
    options = await context.services.engine.queries.upload_targets(member.id)
    for group in groups:
        if options:
            markup = pick_buttons(context, options, group)
        else:
            markup = InlineKeyboardMarkup([[button(context.texts, Verb.cancel, group.id)]])
        await reply(
            update,
            context,
            "held_reminder",
            markup,
            names=group.names,
            since=group.created_at,
            has_targets=bool(options),
        )


async def ask_unit(
    update: Update,
    context: SopContext,
    member: MemberInfo,
    exc: AmbiguousUnit,
    held: HeldFile | None = None,
) -> None:
    """The step is known but the member has a task on it for several units:
    ask which unit, with a button per candidate unit. With a file in hand it
    is held until the answer; without one, the answer is an upload button."""
    t = context.texts
    run_step_id = int(exc.context["run_step_id"])
    number, run_title = exc.context.get("number"), exc.context.get("run_title")
    units = [(int(uid or 0), str(name or "")) for uid, name in exc.context.get("units", [])]
    earlier: list[str] = []
    group: HeldGroup | None = None
    if held is not None:
        _check_size(context, held)
        earlier = await actions.held_names(context, member)
        group = await context.services.waiting.hold(member.id, held)
    rows = []
    for uid, name in units:
        label = t.render("pick_label", number=number, unit=name, run_title=run_title)
        if group is not None:
            rows.append([button(t, Verb.pick, run_step_id, uid, group.id, label=label[:60])])
        else:
            rows.append([button(t, Verb.up, run_step_id, uid, label=label[:60])])
    cancel = button(t, Verb.cancel, group.id) if group is not None else button(t, Verb.cancel)
    rows.append([cancel])
    await reply(
        update,
        context,
        "pick_unit",
        InlineKeyboardMarkup(rows),
        name=held.name if held is not None else None,
        earlier=earlier,
    )


@enrolled
async def on_other(update: Update, context: SopContext, member: MemberInfo) -> None:
    """A sticker, voice note, video, location...: not what any step asks for."""
    raise FileRejected("not_a_file")
