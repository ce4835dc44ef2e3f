"""The error handler: log the update and traceback, tell the person in one line."""

from __future__ import annotations

import html
import json
import logging
import traceback

from telegram import Update

from handlers.common import Context, texts

log = logging.getLogger("sopbot.errors")


async def on_error(update: object, context: Context) -> None:
    tb = "".join(traceback.format_exception(context.error)) if context.error else ""
    payload = update.to_dict() if isinstance(update, Update) else str(update)
    log.error(
        "error while handling an update: %s\n%s",
        json.dumps(payload, ensure_ascii=False, default=str)[:4000],
        tb,
    )
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer()
        await context.bot.send_message(
            update.effective_chat.id, texts(context).render("errors/error")
        )
    except Exception:  # the report must never raise from the error handler
        log.exception(
            "could not tell the user about the error (%s)", html.escape(str(context.error))
        )
