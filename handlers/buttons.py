"""Button presses: one handler per verb of bot/verbs.py, registered with
the verb's pattern in handlers/__init__.py, and `unknown` for data that
matches none (forged, or from a version that is gone). The data names a
verb and ids only; the engine decides, from the database, whether this
person may do it now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import replace
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from bot.chat import SopContext, button, keyboard, send_pages
from bot.errors import AlreadyDone, AmbiguousUnit, HeldGone, InvalidInput
from bot.members import MemberInfo
from bot.outbox import SentMessage
from bot.pending import (
    CloseReason,
    FileFor,
    MeetingConfirm,
    MeetingTime,
    NoteKept,
    ReturnNote,
)
from bot.run.actions import review_actions
from bot.run.rules import Purpose
from bot.texts import CAPTION_LIMIT, plain
from bot.verbs import Verb, decode
from bot.views import iso
from handlers import actions, text, uploads
from handlers.commands import history_page, status_table
from handlers.common import acknowledge, ask, enrolled, reply


class Notice(str):
    """A short answer on the press that leaves the message's buttons be
    (an invitation may still be answered otherwise)."""


# What a press does, given the ids its data carries; True when the message's
# buttons are spent (the action is done) and should go, or the short notice
# that answers the press (its buttons go too, unless it is a Notice).
Press = Callable[..., Awaitable[bool | str]]
Handler = Callable[[Update, SopContext], Coroutine[Any, Any, None]]


async def _drop_buttons(update: Update, context: SopContext, member: MemberInfo) -> None:
    """Remove the keyboard of a message whose action is done, so a stale
    button is not pressed again by mistake (a press would still be refused).
    No edit that changes nothing: none on a message without a keyboard, and
    none on a message the outbox edits (the line that says what happened,
    its buttons gone, which the press itself queued): that edit is its one
    change, where a second removal would be refused as "not modified"."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message) or not query.message.reply_markup:
        return
    if await context.services.outbox.edit_owed(member.id, query.message.message_id):
        return
    with suppress(BadRequest):  # too old to edit
        await query.edit_message_reply_markup(reply_markup=None)


def pressed(verb: Verb, press: Press) -> Handler:
    """The handler for one verb's buttons: for enrolled members only, the
    ids decoded (the pattern let the data through; the ids' size is still
    checked), the spinner stopped, spent buttons dropped."""

    @enrolled
    async def handler(update: Update, context: SopContext, member: MemberInfo) -> None:
        query = update.callback_query
        assert query is not None
        parsed = decode(query.data)
        if parsed is None or parsed[0] != verb:
            raise InvalidInput("bad_button")
        drop = await press(update, context, member, *parsed[1])
        await query.answer(drop.strip()[:190] if isinstance(drop, str) else None)
        if drop and not isinstance(drop, Notice):
            await _drop_buttons(update, context, member)

    handler.__name__ = handler.__qualname__ = f"on_{verb.value}"
    return handler


@enrolled
async def unknown(update: Update, context: SopContext, member: MemberInfo) -> None:
    """Data no verb's pattern matched: answered, never guessed at."""
    raise InvalidInput("bad_button")


async def _held_note(context: SopContext, member: MemberInfo, run_step_id: int) -> str | None:
    """A note typed as a reply to this task, waiting for its button."""
    question = await context.services.waiting.get(member.id)
    if isinstance(question, NoteKept) and question.run_step_id == run_step_id:
        return question.note
    return None


async def _ok(
    update: Update, context: SopContext, member: MemberInfo, run_step_id: int
) -> bool | str:
    await context.services.engine.rules.authorize(member.id, run_step_id)
    note = await _held_note(context, member, run_step_id)
    return await actions.complete(update, context, member, run_step_id, note)


async def _use(
    update: Update, context: SopContext, member: MemberInfo, run_step_id: int, file_id: int
) -> bool | str:
    """Gunakan draf ini (Pakai surat ini): the bot's draft is the step's
    document, and the step is done (a note typed as a reply to the task goes
    with it; a letter's note is its number). A question still open, such as
    the number an earlier Selesai asked for, is answered by this."""
    svc = context.services
    await svc.engine.rules.authorize(member.id, run_step_id)
    note = await _held_note(context, member, run_step_id)
    step = await svc.engine.steps.use_draft(member.id, run_step_id, file_id, note)
    prompt = await svc.waiting.prompt_of(member.id)
    await svc.waiting.clear(member.id)
    return await acknowledge(
        update, context, "step_done_ack", prompt, number=step.number, note=step.note
    )


async def _dec(
    update: Update, context: SopContext, member: MemberInfo, run_step_id: int, outcome: int
) -> bool | str:
    await context.services.engine.rules.authorize(member.id, run_step_id)
    note = await _held_note(context, member, run_step_id)
    return await actions.decide(update, context, member, run_step_id, outcome, note)


async def _up(
    update: Update, context: SopContext, member: MemberInfo, run_step_id: int, unit_id: int = 0
) -> bool | str:
    """Wait for a file for this task. The unit in the button only picks which
    of the member's tasks is meant; the engine checks it like any other."""
    svc = context.services
    try:
        task = await svc.engine.rules.authorize(
            member.id, run_step_id, unit_id=unit_id or None, purpose=Purpose.upload
        )
    except AmbiguousUnit as exc:  # a button from before the unit was carried
        await uploads.ask_unit(update, context, member, exc)
        return False
    await svc.waiting.set(member.id, FileFor(run_step_id, task.unit_id))
    held = await actions.held_names(context, member)
    values: dict[str, Any] = {
        "number": task.number,
        "unit": task.unit_name,
        "run_title": task.run_title,
        "held": held,
    }
    if not held:
        # Answered on the press: the next thing in the chat is the file.
        return Notice(plain(context.texts.render("prompt_upload", **values)).strip())
    await reply(update, context, "prompt_upload", **values)
    return False


async def _mtg(update: Update, context: SopContext, member: MemberInfo, run_step_id: int) -> bool:
    svc = context.services
    await svc.engine.rules.authorize(member.id, run_step_id)
    await svc.waiting.set(member.id, MeetingTime(run_step_id))
    await ask(
        update,
        context,
        member.id,
        "prompt_meeting",
        example=text.meeting_example(context),
        held=await actions.held_names(context, member),
    )
    return False


async def _meeting_ok(
    update: Update, context: SopContext, member: MemberInfo, run_step_id: int
) -> bool:
    """Ya, tetap: the organiser keeps a meeting time outside office hours."""
    # A step already done (the meeting set meanwhile) answers as any stale button.
    await context.services.engine.rules.authorize(member.id, run_step_id)
    question = await context.services.waiting.get(member.id)
    if not isinstance(question, MeetingConfirm) or question.run_step_id != run_step_id:
        raise InvalidInput("nothing_to_confirm")
    await text.set_meeting(
        update,
        context,
        member,
        run_step_id,
        question.starts_at,
        question.place,
        confirmed=True,
    )
    return True


async def _cls(
    update: Update, context: SopContext, member: MemberInfo, run_step_id: int, unit_id: int = -1
) -> bool:
    """Tutup dengan alasan: first which unit (one button per unit still
    awaited, and one for all of them), then the reason for that choice."""
    svc = context.services
    task, units = await svc.engine.collection.closable_units(member.id, run_step_id)
    t = context.texts
    if unit_id < 0:
        rows = [[button(t, Verb.cls, run_step_id, uid, label=name[:60])] for uid, name in units]
        if len(units) > 1:
            label = t.render("close_label", action=task.action, count=len(units))
            rows.append([button(t, Verb.cls, run_step_id, 0, label=label[:60])])
        rows.append([button(t, Verb.cancel)])
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
    await svc.waiting.set(member.id, CloseReason(run_step_id, unit_id or None, tuple(names)))
    await ask(
        update,
        context,
        member.id,
        "prompt_close",
        number=task.number,
        units=names,
        held=await actions.held_names(context, member),
    )
    return False


async def _view(update: Update, context: SopContext, member: MemberInfo, run_step_id: int) -> bool:
    """The reviewer's overview: each unit's state, then each file awaiting review."""
    svc = context.services
    run, deliveries = await svc.engine.queries.collection(member.id, run_step_id)
    await reply(update, context, "collection", run_title=run.title, deliveries=deliveries)
    chat = update.effective_chat
    assert chat is not None
    t = context.texts
    for d in deliveries:
        f = d.file
        if f is None or f.review_state.value != "received":
            continue
        actions = review_actions(f.id or 0)
        shown: dict[str, Any] = {
            "unit": d.unit_name,
            "name": f.original_name,
            "version": f.version,
            "size": sum(p.size for p in d.pages) if d.pages else f.size,
            "sha256": f.sha256,
            "at": iso(f.received_at),
            "pages": len(d.pages),
            "actions": [a.as_dict() for a in actions],
        }
        caption = t.render("review_caption", max_chars=CAPTION_LIMIT, **shown)
        markup = keyboard(t, actions)
        if len(d.pages) > 1:
            # Every page of the album, then one Terima / Kembalikan for all.
            await send_pages(context.bot, chat.id, svc, d.pages)
            message = await context.bot.send_message(chat.id, caption, reply_markup=markup)
            shown["album"] = [p.id for p in d.pages]
        else:
            source = f.telegram_file_id or svc.storage.read(f.storage_path)
            if f.kind == "photo":
                message = await context.bot.send_photo(
                    chat.id, source, caption=caption, reply_markup=markup
                )
            else:
                message = await context.bot.send_document(
                    chat.id,
                    source,
                    caption=caption,
                    reply_markup=markup,
                    filename=f.original_name,
                )
        # Kept, so that whoever reviews the file first takes these buttons
        # away too (Settling.review_messages), as on the copy the outbox sent;
        # a file reviewed (or replaced, or its run ended) while this copy was
        # on its way was settled without it: its buttons go at once.
        copy = SentMessage.about(
            message.message_id,
            f,
            key=f"shown:{f.id}:{member.id}:{message.message_id}",
            member_id=member.id,
            template="review_caption",
            context=shown,
            file_id=f.id,
        )
        await svc.engine.keep([copy])
    return False


async def _acc(update: Update, context: SopContext, member: MemberInfo, file_id: int) -> str:
    """Accept. The review messages the outbox sent then say who accepted and
    when (every planner's copy is edited), so the presser gets no new
    message: a short notice on the press itself says it is done."""
    svc = context.services
    stored = await svc.engine.collection.review(member.id, file_id, accept=True)
    pages = await svc.engine.queries.pages(file_id)
    return plain(
        context.texts.render(
            "reviewed_ack", accepted=True, name=stored.original_name, pages=len(pages)
        )
    )


async def _ret(update: Update, context: SopContext, member: MemberInfo, file_id: int) -> bool:
    svc = context.services
    stored = await svc.engine.rules.check_review(member.id, file_id)
    await svc.waiting.set(member.id, ReturnNote(file_id))
    await ask(
        update,
        context,
        member.id,
        "prompt_return",
        pages=len(await svc.engine.queries.pages(file_id)),
        name=stored.original_name,
        held=await actions.held_names(context, member),
    )
    return False


async def _rsvp(
    update: Update, context: SopContext, member: MemberInfo, meeting_id: int, attending: int
) -> bool | str:
    """Hadir / Tidak hadir, answered on the press: the invitation keeps its
    buttons until the meeting, so the answer may still change."""
    await context.services.engine.steps.answer_meeting(member.id, meeting_id, bool(attending))
    return Notice(plain(context.texts.render("rsvp_ack", attending=bool(attending))).strip())


async def _pick(
    update: Update,
    context: SopContext,
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
            await context.services.waiting.restore(member.id, rest)
            raise
    return True


async def _page(
    update: Update, context: SopContext, member: MemberInfo, run_id: int, offset: int
) -> bool:
    text, markup = await history_page(context, run_id, offset)
    query = update.callback_query
    assert query is not None
    with suppress(BadRequest):  # "message is not modified"
        await query.edit_message_text(text, reply_markup=markup)
    return False


async def _stat(update: Update, context: SopContext, member: MemberInfo, run_id: int) -> bool:
    """Tabel lengkap under a run's /status: its whole table, in its place."""
    await status_table(update, context, run_id)
    return False


async def _cancel(
    update: Update, context: SopContext, member: MemberInfo, group_id: int | None = None
) -> bool:
    """Batal under a "which task is this file for?" question cancels that
    held file (or album) only; any other Batal cancels the question only."""
    if group_id is None:
        await actions.cancel_all(update, context, member, files=False)
        return True
    await actions.current_held(context, member)  # let expired ones go, told
    dropped = await context.services.waiting.drop_held(member.id, group_id)
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
    update: Update, context: SopContext, member: MemberInfo, assignment_id: int
) -> bool:
    """Ask whom to hand the task to, with a button per candidate."""
    t = context.texts
    candidates = await context.services.engine.delegation.candidates(member.id, assignment_id)
    rows = [
        [
            button(
                t,
                Verb.to,
                assignment_id,
                c.member_id,
                label=t.render("delegate_label", max_chars=60, candidate=c),
            )
        ]
        for c in candidates
    ]
    rows.append([button(t, Verb.cancel)])
    await reply(update, context, "pick_delegate", InlineKeyboardMarkup(rows), candidates=candidates)
    return False


async def _delegate_to(
    update: Update, context: SopContext, member: MemberInfo, assignment_id: int, to_member_id: int
) -> bool:
    await context.services.engine.delegation.reassign(member.id, assignment_id, to_member_id)
    target = await context.services.members.get(to_member_id)
    await reply(update, context, "delegated_ack", name=target.name)
    return True


# One handler per verb; handlers/__init__.py registers each with its pattern.
ok = pressed(Verb.ok, _ok)
send = pressed(Verb.send, _ok)  # a distribution step is finished like any other
dec = pressed(Verb.dec, _dec)
up = pressed(Verb.up, _up)
mtg = pressed(Verb.mtg, _mtg)
mok = pressed(Verb.mok, _meeting_ok)
view = pressed(Verb.view, _view)
cls = pressed(Verb.cls, _cls)
acc = pressed(Verb.acc, _acc)
ret = pressed(Verb.ret, _ret)
rsvp = pressed(Verb.rsvp, _rsvp)
pick = pressed(Verb.pick, _pick)
page = pressed(Verb.page, _page)
cancel = pressed(Verb.cancel, _cancel)
dlg = pressed(Verb.dlg, _delegate)
to = pressed(Verb.to, _delegate_to)
stat = pressed(Verb.stat, _stat)
use = pressed(Verb.use, _use)
