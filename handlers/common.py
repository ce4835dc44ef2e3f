"""What every handler needs: the services, the acting member, replies
rendered from templates, and button encoding."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import wraps
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Update,
)
from telegram.ext import ContextTypes

from bot.errors import EngineError
from bot.members import MemberInfo
from bot.models import StoredFile
from bot.services import Services
from bot.texts import Texts, plain

Context = ContextTypes.DEFAULT_TYPE

# verb -> the numbers of integer arguments it may carry. "up" carries the
# step and the unit (a member of two units has two tasks on one step); a
# button sent before the unit was carried has the step only. "pick" names the
# held file group it places (older questions did not); "cancel" under such a
# question names the group it cancels.
VERBS: dict[str, frozenset[int]] = {
    "ok": frozenset({1}),
    "up": frozenset({1, 2}),
    "dec": frozenset({2}),
    "send": frozenset({1}),
    "mtg": frozenset({1}),
    "mok": frozenset({1}),
    "view": frozenset({1}),
    "cls": frozenset({1, 2}),
    "acc": frozenset({1}),
    "dlg": frozenset({1}),
    "to": frozenset({2}),
    "ret": frozenset({1}),
    "rsvp": frozenset({2}),
    "pick": frozenset({2, 3}),
    "page": frozenset({2}),
    "cancel": frozenset({0, 1}),
}


def services(context: Context) -> Services:
    return context.application.bot_data["services"]


def texts(context: Context) -> Texts:
    return services(context).texts


def encode(verb: str, *args: int) -> str:
    data = ":".join([verb, *(str(a) for a in args)])
    assert len(data.encode()) <= 64, data
    return data


def decode(data: str | None) -> tuple[str, tuple[int, ...]] | None:
    """Button data back to (verb, ids); None for anything not ours."""
    if not data or len(data) > 64:
        return None
    verb, *parts = data.split(":")
    if verb not in VERBS or len(parts) not in VERBS[verb]:
        return None
    try:
        args = tuple(int(p) for p in parts)
    except ValueError:
        return None
    if any(a < 0 or a > 2**53 for a in args):
        return None
    return verb, args


def button(
    t: Texts, verb: str, *args: int, label: str | None = None, icon: str | None = None
) -> InlineKeyboardButton:
    text = (
        t.env.get_template("button.html.j2")
        .render(verb=verb, label=label or "", icon=icon or "", yes=bool(args and args[-1]))
        .strip()
    )
    return InlineKeyboardButton(text, callback_data=encode(verb, *args))


async def send_pages(bot: Bot, chat_id: int, svc: Services, pages: list[StoredFile]) -> None:
    """Every page of an album, as Telegram albums: ten at most each, photos
    and documents apart (Telegram does not mix them); a lone page alone."""
    for kind in ("photo", "document"):
        group = [f for f in pages if (f.kind == "photo") == (kind == "photo")]
        for i in range(0, len(group), 10):
            chunk = group[i : i + 10]
            sources = [f.telegram_file_id or svc.storage.read(f.storage_path) for f in chunk]
            if len(chunk) == 1:
                if kind == "photo":
                    await bot.send_photo(chat_id, sources[0])
                else:
                    await bot.send_document(chat_id, sources[0], filename=chunk[0].original_name)
                continue
            media: list[InputMediaPhoto | InputMediaDocument] = [
                InputMediaPhoto(src)
                if kind == "photo"
                else InputMediaDocument(src, filename=f.original_name)
                for f, src in zip(chunk, sources, strict=True)
            ]
            await bot.send_media_group(chat_id, media)  # type: ignore[arg-type]


def keyboard(t: Texts, actions: Iterable[Mapping[str, Any]] | None) -> InlineKeyboardMarkup | None:
    """Buttons from the engine's action dicts ({verb, args, label}), two a row."""
    buttons = [
        button(t, a["verb"], *a["args"], label=a.get("label"), icon=a.get("icon"))
        for a in actions or []
    ]
    if not buttons:
        return None
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(rows)


async def member_of(update: Update, context: Context) -> MemberInfo | None:
    """The member who sent this update (a configured admin is enrolled on
    first contact), or None for a stranger."""
    user = update.effective_user
    if user is None:
        return None
    name, username = display_name(update)
    return await services(context).members.recognise(user.id, name=name, username=username)


def command_args(update: Update) -> str:
    """What follows the command word: '/hentikan 3 alasan' -> '3 alasan'."""
    text = update.effective_message.text if update.effective_message else ""
    return (text or "").partition(" ")[2].strip()


async def reply(
    update: Update,
    context: Context,
    template: str,
    markup: InlineKeyboardMarkup | None = None,
    **values: Any,
) -> None:
    """Answer the person in the chat they wrote from. A text over Telegram's
    limit goes as several messages; the buttons go with the last."""
    chat = update.effective_chat
    if chat is None:
        return
    parts = texts(context).render_parts(template, **values)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        await context.bot.send_message(chat.id, part, reply_markup=markup if last else None)


async def reply_error(update: Update, context: Context, error: EngineError) -> None:
    """A refusal, in one clear Indonesian message; a button press is answered
    with a short alert as well, so the spinner stops."""
    text = texts(context).render(f"errors/{error.code}", detail=error.detail, **error.context)
    query = update.callback_query
    if query is not None:
        await query.answer(plain(text).strip()[:190], show_alert=True)
        return
    await reply_raw(update, context, text)


async def reply_raw(
    update: Update, context: Context, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    chat = update.effective_chat
    if chat is not None:
        await context.bot.send_message(chat.id, text, reply_markup=markup)


async def stranger(update: Update, context: Context) -> None:
    """One polite line on how to join; only the attempt is recorded."""
    user = update.effective_user
    if user is None:
        return
    kind = "button" if update.callback_query else "message"
    members = services(context).members
    await members.record_stranger(user.id, kind)
    # A revoked member is no stranger: they are told why the bot no longer serves them.
    template = (
        "errors/revoked_member" if await members.was_revoked(user.id) else "errors/not_enrolled"
    )
    if update.callback_query is not None:
        await update.callback_query.answer(
            plain(texts(context).render(template)).strip(), show_alert=True
        )
        return
    await reply(update, context, template)


def kick_outbox(context: Context) -> None:
    """Deliver what the last command queued, now rather than at the next tick."""
    sender = context.application.bot_data.get("outbox")
    if sender is not None and context.job_queue is not None:
        context.job_queue.run_once(sender.job, 0, name="outbox-kick")


def display_name(update: Update) -> tuple[str, str | None]:
    user = update.effective_user
    assert user is not None
    return user.full_name or str(user.id), user.username


def enrolled(
    func: Callable[[Update, Context, MemberInfo], Awaitable[None]],
) -> Callable[[Update, Context], Awaitable[None]]:
    """Run the handler for enrolled members only; strangers get one line and
    refusals from the engine become their Indonesian message."""

    @wraps(func)
    async def wrapper(update: Update, context: Context) -> None:
        member = await member_of(update, context)
        if member is None:
            await stranger(update, context)
            return
        try:
            await func(update, context, member)
        except EngineError as exc:
            await reply_error(update, context, exc)
        finally:
            kick_outbox(context)

    return wrapper
