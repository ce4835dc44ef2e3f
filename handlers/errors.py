"""The error handler: log the update and traceback, tell the person in one
line, and report the failure to the admins (as rules-bot reports to its
developers), at most once per kind of error every ten minutes."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import timedelta

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.chat import SopContext
from bot.inbox import handling_failed

log = logging.getLogger("sopbot.errors")
REPORT_EVERY = timedelta(minutes=10)


async def on_error(update: object, context: SopContext) -> None:
    """Log and report; the update is recorded as failed in the inbox (not
    done: a redelivery of it is handled again), and its later handler
    groups do not run."""
    handling_failed()
    error = context.error
    tb = "".join(traceback.format_exception(error)) if error else ""
    payload = update.to_dict() if isinstance(update, Update) else str(update)
    log.error(
        "error while handling an update: %s\n%s",
        json.dumps(payload, ensure_ascii=False, default=str)[:4000],
        tb,
    )
    try:
        await _tell_the_person(update, context)
        await _report_to_admins(update, context)
    except Exception:  # the error handler must never raise
        log.exception("could not report the error %r", error)
    if isinstance(update, Update):
        raise ApplicationHandlerStop


async def _tell_the_person(update: object, context: SopContext) -> None:
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    await context.bot.send_message(update.effective_chat.id, context.texts.render("errors/error"))


async def _report_to_admins(update: object, context: SopContext) -> None:
    """Sent directly, not through the outbox: the outbox may be what failed."""
    error = context.error
    svc = context.services
    now = svc.clock.now()
    kind = type(error).__name__ if error else "Error"
    last = context.bot_data.error_reports
    previous = last.get(kind)
    if previous is not None and now - previous < REPORT_EVERY:
        return
    last[kind] = now
    user = update.effective_user if isinstance(update, Update) else None
    what = "job"
    if isinstance(update, Update):
        message = update.effective_message
        if update.callback_query is not None:
            what = "button"
        elif message is not None and message.text and message.text.startswith("/"):
            what = message.text.split()[0][:40]
        else:
            what = "message"
    text = context.texts.render(
        "errors/admin_report",
        kind=kind,
        detail=str(error)[:300] if error else "",
        what=what,
        user=user.full_name if user else None,
        user_id=user.id if user else None,
        at=now,
    )
    for chat_id in await svc.members.admin_chats():
        await context.bot.send_message(chat_id, text)
