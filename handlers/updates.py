"""Dedupe by update_id, before any handler sees the update."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from handlers.common import Context, services

log = logging.getLogger(__name__)


async def drop_seen(update: Update, context: Context) -> None:
    if not await services(context).updates.first_time(update.update_id):
        log.info("update %s already handled; dropped", update.update_id)
        raise ApplicationHandlerStop
