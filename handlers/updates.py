"""Dedupe by update_id: `begin` runs before any handler (group -1), `finish`
after all of them (the last group). An update whose handling raised never
reaches `finish` (the error handler stops it), so a redelivery is handled
again; a finished one is dropped."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.chat import SopContext
from bot.updates import Seen

log = logging.getLogger(__name__)

FIRST_GROUP = -1
LAST_GROUP = 100


async def begin(update: Update, context: SopContext) -> None:
    seen = await context.services.updates.begin(update.update_id)
    if seen == Seen.finished:
        log.info("update %s already handled; dropped", update.update_id)
        raise ApplicationHandlerStop
    if seen == Seen.unfinished:
        log.warning("update %s not handled to the end before; again", update.update_id)


async def finish(update: Update, context: SopContext) -> None:
    try:
        await context.services.updates.finish(update.update_id)
    except Exception:  # what the person asked for is done; a redelivery is harmless
        log.exception("could not mark update %s finished", update.update_id)
