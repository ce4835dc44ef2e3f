"""Button presses. The data names a verb and ids only; the engine decides,
from the database, whether this person may do it now."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from datetime import datetime

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from bot.errors import AlreadyDone, AmbiguousUnit, HeldGone, InvalidInput
from bot.members import MemberInfo
from bot.texts import CAPTION_LIMIT
from handlers import actions, text, uploads
from handlers.commands import history_page
from handlers.common import (
    Context,
    button,
    decode,
    enrolled,
    keyboard,
    reply,
    send_pages,
    services,
    texts,
)


async def _drop_buttons(update: Update) -> None:
    """Remove the keyboard of a message whose action is done, so a stale
    button is not pressed again by mistake (a press would still be refused)."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    with suppress(BadRequest):  # already edited, or too old to edit
        await query.edit_message_reply_markup(reply_markup=None)


@enrolled
async def on_button(update: Update, context: Context, member: MemberInfo) -> None:
    query = update.callback_query
    assert query is not None
    parsed = decode(query.data)
    if parsed is None:
        raise InvalidInput("bad_button")
    verb, args = parsed
    handler = {
        "ok": _ok,
        "send": _ok,
        "dec": _dec,
        "up": _up,
        "mtg": _mtg,
        "mok": _meeting_ok,
        "view": _view,
        "cls": _cls,
        "acc": _acc,
        "ret": _ret,
        "rsvp": _rsvp,
        "pick": _pick,
        "page": _page,
        "cancel": _cancel,
        "dlg": _delegate,
        "to": _delegate_to,
    }[verb]
    drop = await handler(update, context, member, *args)
    await query.answer()
    if drop:
        await _drop_buttons(update)


async def _held_note(context: Context, member: MemberInfo, run_step_id: int) -> str | None:
    """A note typed as a reply to this task, waiting for its button."""
    pending = await services(context).waiting.get(member.id)
    if pending and pending.kind == "note_ready" and pending.payload["run_step_id"] == run_step_id:
        return str(pending.payload["note"])
    return None


async def _ok(update: Update, context: Context, member: MemberInfo, run_step_id: int) -> bool:
    await services(context).engine.authorize(member.id, run_step_id)
    note = await _held_note(context, member, run_step_id)
    return await actions.complete(update, context, member, run_step_id, note)


async def _dec(
    update: Update, context: Context, member: MemberInfo, run_step_id: int, outcome: int
) -> bool:
    await services(context).engine.authorize(member.id, run_step_id)
    note = await _held_note(context, member, run_step_id)
    return await actions.decide(update, context, member, run_step_id, outcome, note)


async def _up(
    update: Update, context: Context, member: MemberInfo, run_step_id: int, unit_id: int = 0
) -> bool:
    """Wait for a file for this task. The unit in the button only picks which
    of the member's tasks is meant; the engine checks it like any other."""
    svc = services(context)
    try:
        task = await svc.engine.authorize(
            member.id, run_step_id, unit_id=unit_id or None, purpose="upload"
        )
    except AmbiguousUnit as exc:  # a button from before the unit was carried
        await uploads.ask_unit(update, context, member, exc)
        return False
    await svc.waiting.set(member.id, "upload", run_step_id=run_step_id, unit_id=task.unit_id)
    await reply(
        update,
        context,
        "prompt_upload",
        number=task.number,
        unit=task.unit_name,
        run_title=task.run_title,
        held=await actions.held_names(context, member),
    )
    return False


async def _mtg(update: Update, context: Context, member: MemberInfo, run_step_id: int) -> bool:
    svc = services(context)
    await svc.engine.authorize(member.id, run_step_id)
    await svc.waiting.set(member.id, "meeting", run_step_id=run_step_id)
    await reply(
        update,
        context,
        "prompt_meeting",
        example=text.meeting_example(context),
        held=await actions.held_names(context, member),
    )
    return False


async def _meeting_ok(
    update: Update, context: Context, member: MemberInfo, run_step_id: int
) -> bool:
    """Ya, tetap: the organiser keeps a meeting time outside office hours."""
    # A step already done (the meeting set meanwhile) answers as any stale button.
    await services(context).engine.authorize(member.id, run_step_id)
    pending = await services(context).waiting.get(member.id)
    if (
        pending is None
        or pending.kind != "meeting_confirm"
        or pending.payload.get("run_step_id") != run_step_id
    ):
        raise InvalidInput("nothing_to_confirm")
    starts_at = datetime.fromisoformat(str(pending.payload["starts_at"]))
    await text.set_meeting(
        update,
        context,
        member,
        run_step_id,
        starts_at,
        str(pending.payload["place"]),
        confirmed=True,
    )
    return True


async def _cls(
    update: Update, context: Context, member: MemberInfo, run_step_id: int, unit_id: int = -1
) -> bool:
    """Tutup dengan alasan: first which unit (one button per unit still
    awaited, and one for all of them), then the reason for that choice."""
    svc = services(context)
    task, units = await svc.engine.closable_units(member.id, run_step_id)
    t = texts(context)
    if unit_id < 0:
        rows = [[button(t, "cls", run_step_id, uid, label=name[:60])] for uid, name in units]
        if len(units) > 1:
            label = t.render("close_label", action=task.action, count=len(units))
            rows.append([button(t, "cls", run_step_id, 0, label=label[:60])])
        rows.append([button(t, "cancel")])
        await reply(
            update,
            context,
            "pick_close",
            InlineKeyboardMarkup(rows),
            run_title=task.run_title,
            number=task.number,
            action=task.action,
            units=[name for _, name in units],
        )
        return False
    names = [name for uid, name in units if unit_id in (0, uid)]
    if not names and units:
        raise AlreadyDone()  # that unit delivered, or was closed, meanwhile
    await svc.waiting.set(
        member.id, "close", run_step_id=run_step_id, unit_id=unit_id or None, units=names
    )
    await reply(
        update,
        context,
        "prompt_close",
        number=task.number,
        units=names,
        held=await actions.held_names(context, member),
    )
    return False


async def _view(update: Update, context: Context, member: MemberInfo, run_step_id: int) -> bool:
    """The reviewer's overview: each unit's state, then each file awaiting review."""
    svc = services(context)
    run, deliveries = await svc.engine.collection(member.id, run_step_id)
    await reply(update, context, "collection", run_title=run.title, deliveries=deliveries)
    chat = update.effective_chat
    assert chat is not None
    t = texts(context)
    for d in deliveries:
        f = d.file
        if f is None or f.review_state.value != "received":
            continue
        caption = t.render(
            "review_caption",
            max_chars=CAPTION_LIMIT,
            unit=d.unit_name,
            name=f.original_name,
            version=f.version,
            size=sum(p.size for p in d.pages) if d.pages else f.size,
            sha256=f.sha256,
            at=f.received_at,
            pages=len(d.pages),
        )
        markup = keyboard(t, [{"verb": "acc", "args": [f.id]}, {"verb": "ret", "args": [f.id]}])
        if len(d.pages) > 1:
            # Every page of the album, then one Terima / Kembalikan for all.
            await send_pages(context.bot, chat.id, svc, d.pages)
            await context.bot.send_message(chat.id, caption, reply_markup=markup)
            continue
        source = f.telegram_file_id or svc.storage.read(f.storage_path)
        if f.kind == "photo":
            await context.bot.send_photo(chat.id, source, caption=caption, reply_markup=markup)
        else:
            await context.bot.send_document(
                chat.id, source, caption=caption, reply_markup=markup, filename=f.original_name
            )
    return False


async def _acc(update: Update, context: Context, member: MemberInfo, file_id: int) -> bool:
    svc = services(context)
    stored = await svc.engine.review(member.id, file_id, accept=True)
    pages = await svc.engine.pages(file_id)
    await reply(
        update,
        context,
        "reviewed_ack",
        accepted=True,
        name=stored.original_name,
        pages=len(pages),
    )
    return True


async def _ret(update: Update, context: Context, member: MemberInfo, file_id: int) -> bool:
    svc = services(context)
    stored = await svc.engine.check_review(member.id, file_id)
    await svc.waiting.set(member.id, "return", file_id=file_id)
    await reply(
        update,
        context,
        "prompt_return",
        pages=len(await svc.engine.pages(file_id)),
        name=stored.original_name,
        held=await actions.held_names(context, member),
    )
    return False


async def _rsvp(
    update: Update, context: Context, member: MemberInfo, meeting_id: int, attending: int
) -> bool:
    await services(context).engine.answer_meeting(member.id, meeting_id, bool(attending))
    await reply(update, context, "rsvp_ack", attending=bool(attending))
    return False


async def _pick(
    update: Update,
    context: Context,
    member: MemberInfo,
    run_step_id: int,
    unit_id: int,
    group_id: int | None = None,
) -> bool:
    """The person chose where a held file (or album) belongs; other files
    held meanwhile wait for their own question. A file the task refuses
    (wrong type, step closed) stays held with the ones after it, so the
    person can choose another button or cancel: nothing is lost."""
    group = await uploads.take_held(context, member, group_id)
    for i, held in enumerate(group.files):
        try:
            await actions.store_file(update, context, member, run_step_id, held, unit_id or None)
        except BaseException:
            rest = replace(group, files=group.files[i:])
            await services(context).waiting.restore(member.id, rest)
            raise
    return True


async def _page(
    update: Update, context: Context, member: MemberInfo, run_id: int, offset: int
) -> bool:
    text, markup = await history_page(context, run_id, offset)
    query = update.callback_query
    assert query is not None
    with suppress(BadRequest):  # "message is not modified"
        await query.edit_message_text(text, reply_markup=markup)
    return False


async def _cancel(
    update: Update, context: Context, member: MemberInfo, group_id: int | None = None
) -> bool:
    """Batal under a "which task is this file for?" question cancels that
    held file (or album) only; any other Batal cancels the question only."""
    if group_id is None:
        await actions.cancel_all(update, context, member, files=False)
        return True
    await actions.current_held(context, member)  # let expired ones go, told
    dropped = await services(context).waiting.drop_held(member.id, group_id)
    if not dropped:
        raise HeldGone()
    await reply(
        update,
        context,
        "cancelled_held",
        dropped=[n for g in dropped for n in g.names],
        still=await actions.held_names(context, member),
    )
    return True


async def _delegate(
    update: Update, context: Context, member: MemberInfo, assignment_id: int
) -> bool:
    """Ask whom to hand the task to, with a button per candidate."""
    t = texts(context)
    candidates = await services(context).engine.delegation_candidates(member.id, assignment_id)
    rows = [
        [
            button(
                t,
                "to",
                assignment_id,
                c.member_id,
                label=t.render("delegate_label", max_chars=60, candidate=c),
            )
        ]
        for c in candidates
    ]
    rows.append([button(t, "cancel")])
    await reply(update, context, "pick_delegate", InlineKeyboardMarkup(rows), candidates=candidates)
    return False


async def _delegate_to(
    update: Update, context: Context, member: MemberInfo, assignment_id: int, to_member_id: int
) -> bool:
    await services(context).engine.reassign(member.id, assignment_id, to_member_id)
    target = await services(context).members.get(to_member_id)
    await reply(update, context, "delegated_ack", name=target.name)
    return True
