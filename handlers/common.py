"""What every handler needs: the acting member and replies rendered from
templates. The context is bot/chat.py's SopContext (`context.services`);
buttons and keyboards are built there too, for the jobs' use as well."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager, nullcontext
from functools import wraps
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from bot.chat import SopContext
from bot.errors import EngineError
from bot.members import MemberInfo
from bot.texts import plain


async def member_of(update: Update, context: SopContext) -> MemberInfo | None:
    """The member who sent this update (a configured admin is enrolled on
    first contact), or None for a stranger."""
    user = update.effective_user
    if user is None:
        return None
    name, username = display_name(update)
    return await context.services.members.recognise(user.id, name=name, username=username)


def command_args(update: Update) -> str:
    """What follows the command word: '/hentikan 3 alasan' -> '3 alasan'."""
    text = update.effective_message.text if update.effective_message else ""
    return (text or "").partition(" ")[2].strip()


async def reply(
    update: Update,
    context: SopContext,
    template: str,
    markup: InlineKeyboardMarkup | None = None,
    **values: Any,
) -> Message | None:
    """Answer the person in the chat they wrote from. A text over Telegram's
    limit goes as several messages; the buttons go with the last."""
    chat = update.effective_chat
    if chat is None:
        return None
    parts = context.texts.render_parts(template, **values)
    message = None
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        message = await context.bot.send_message(
            chat.id, part, reply_markup=markup if last else None
        )
    return message


async def ask(
    update: Update, context: SopContext, member_id: int, template: str, **values: Any
) -> None:
    """Send the prompt of the question just stored, and remember it: the
    answer is then written in its place (see answer_in_place)."""
    message = await reply(update, context, template, **values)
    if message is not None:
        await context.services.waiting.asked_in(member_id, message.message_id)


async def answer_in_place(
    update: Update, context: SopContext, prompt_id: int | None, template: str, **values: Any
) -> None:
    """What the person typed is done: say so in the prompt that asked for it
    (the message just above their answer, no new alert), or in a new
    message when there is none or it cannot be edited."""
    chat = update.effective_chat
    text = context.texts.render(template, **values)
    if prompt_id is not None and chat is not None:
        try:
            await context.bot.edit_message_text(text, chat_id=chat.id, message_id=prompt_id)
            return
        except BadRequest:
            pass  # too old, or gone: a new message instead
    await reply(update, context, template, **values)


async def acknowledge(
    update: Update,
    context: SopContext,
    template: str,
    prompt_id: int | None = None,
    **values: Any,
) -> bool | str:
    """Say that what the person did is done. A button press is answered on
    the press itself (a short notice; the message it came from is edited by
    the outbox to say who did it), so it costs no new message; typed text
    gets a reply. Returns what a button handler returns (see buttons.py)."""
    if update.callback_query is not None:
        return plain(context.texts.render(template, **values)).strip()
    await answer_in_place(update, context, prompt_id, template, **values)
    return True


async def reply_error(update: Update, context: SopContext, error: EngineError) -> None:
    """A refusal, in one clear Indonesian message; a button press is answered
    with a short alert as well, so the spinner stops."""
    text = context.texts.render(f"errors/{error.code}", detail=error.detail, **error.context)
    query = update.callback_query
    if query is not None:
        await query.answer(plain(text).strip()[:190], show_alert=True)
        return
    await reply_raw(update, context, text)


async def reply_raw(
    update: Update, context: SopContext, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    chat = update.effective_chat
    if chat is not None:
        await context.bot.send_message(chat.id, text, reply_markup=markup)


async def stranger(update: Update, context: SopContext) -> None:
    """One polite line on how to join; only the attempt is recorded."""
    user = update.effective_user
    if user is None:
        return
    kind = "button" if update.callback_query else "message"
    members = context.services.members
    await members.record_stranger(user.id, kind)
    # A revoked member is no stranger: they are told why the bot no longer serves them.
    template = (
        "errors/revoked_member" if await members.was_revoked(user.id) else "errors/not_enrolled"
    )
    if update.callback_query is not None:
        await update.callback_query.answer(
            plain(context.texts.render(template)).strip(), show_alert=True
        )
        return
    await reply(update, context, template)


def held_outbox(context: SopContext) -> AbstractContextManager[None]:
    """What the handler's commits queue goes out after its own answer."""
    sender = context.bot_data.sender
    return sender.holding() if sender is not None else nullcontext()


def rearm_deadlines(context: SopContext) -> None:
    """Set the deadline timer again (a new moment is due, e.g. an album
    that settles a quiet moment after its last page)."""
    jobs = context.bot_data.deadline_jobs
    if jobs is not None:
        jobs.arm(context.application)


def display_name(update: Update) -> tuple[str, str | None]:
    user = update.effective_user
    assert user is not None
    return user.full_name or str(user.id), user.username


def enrolled(
    func: Callable[[Update, SopContext, MemberInfo], Coroutine[Any, Any, None]],
) -> Callable[[Update, SopContext], Coroutine[Any, Any, None]]:
    """Run the handler for enrolled members only; strangers get one line and
    refusals from the engine become their Indonesian message."""

    @wraps(func)
    async def wrapper(update: Update, context: SopContext) -> None:
        member = await member_of(update, context)
        if member is None:
            await stranger(update, context)
            return
        with held_outbox(context):
            try:
                await func(update, context, member)
            except EngineError as exc:
                await reply_error(update, context, exc)

    return wrapper
