"""Updates in: long polling or a webhook. Every update is stored in the inbox
(bot/inbox.py) before Telegram is told it arrived, then queued for the
Application; at start, what was stored and never finished is queued first.

Why not python-telegram-bot's Updater: it puts a batch in the queue and asks
for the next one at once, and that request confirms the batch to Telegram
before anything was handled or stored; its webhook server answers 200 once
the update is queued in memory. Both lose what the person sent if the bot is
killed then. Its Updater has no hook between "received" and "confirmed", so
this module does its two small jobs itself, by composition: it calls
Bot.get_updates with the offset only after the batch is stored (one insert
per batch), and its webhook answers only after the store. Everything after
the queue (handlers, the update processor, jobs) is python-telegram-bot's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Sequence
from typing import Any, TypedDict

import tornado.web
from telegram import Update
from telegram.error import InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application
from tornado.httpserver import HTTPServer

from bot.inbox import Inbox

log = logging.getLogger(__name__)

POLL_TIMEOUT = 10  # seconds a getUpdates waits for something new (an Integer to Telegram)
RETRY_LIMIT = 30.0  # the longest pause between failed getUpdates calls
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookOptions(TypedDict):
    """Where Telegram calls the bot (bot/app.py makes them from settings)."""

    listen: str
    port: int
    url_path: str
    webhook_url: str
    secret_token: str | None


class Intake:
    """Receives updates for one Application through its inbox."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        inbox: Inbox,
        *,
        allowed_updates: Sequence[str] = Update.ALL_TYPES,
    ) -> None:
        self.app = app
        self.inbox = inbox
        self.allowed_updates = list(allowed_updates)
        self._receiving = 0
        self._offset: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._server: HTTPServer | None = None

    @property
    def busy(self) -> bool:
        """Is an update being stored, queued or handled now?"""
        return self._receiving > 0 or self.inbox.in_flight > 0

    async def recover(self) -> int:
        """Queue what was stored and never finished (oldest first), before
        anything new; returns how many."""
        payloads = await self.inbox.unfinished()
        for payload in payloads:
            update = Update.de_json(payload, self.app.bot)
            await self.app.update_queue.put(update)
        if payloads:
            log.warning("%d update(s) not finished before the restart: handled now", len(payloads))
        return len(payloads)

    async def receive(self, updates: Sequence[Update], payloads: Sequence[dict[str, Any]]) -> None:
        """Store a batch, then queue what is to be handled (not a redelivery
        of one done or in hand)."""
        self._receiving += 1
        try:
            wanted = set(await self.inbox.store(payloads))
            for update in updates:
                if update.update_id in wanted:
                    await self.app.update_queue.put(update)
        finally:
            self._receiving -= 1

    # ------------------------------------------------------------- polling

    async def start_polling(self, *, long_poll: int = POLL_TIMEOUT) -> None:
        """No webhook (Telegram refuses getUpdates while one is set), the
        stored updates first, then poll in the background."""
        await self.app.bot.delete_webhook()
        await self.recover()
        self._poller = asyncio.create_task(self._poll(long_poll), name="intake:polling")

    async def _poll(self, long_poll: int) -> None:
        pause = 0.0
        while True:
            try:
                updates = await self.app.bot.get_updates(
                    offset=self._offset, timeout=long_poll, allowed_updates=self.allowed_updates
                )
                if updates:
                    await self.receive(updates, [u.to_dict() for u in updates])
                    # Only now may the next call confirm them.
                    self._offset = updates[-1].update_id + 1
                pause = 0.0
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                log.critical("Telegram refused the bot token; polling stopped")
                raise
            except RetryAfter as exc:
                pause = _seconds(exc.retry_after)
                log.warning("getUpdates: flood limit, waiting %.0f s", pause)
            except Exception as exc:  # network, Telegram or the database: try again later
                pause = min(max(pause * 2, 0.5), RETRY_LIMIT)
                level = logging.WARNING if isinstance(exc, TelegramError) else logging.ERROR
                log.log(level, "receiving updates failed (%r); again in %.1f s", exc, pause)
            if pause:
                await asyncio.sleep(pause)

    # ------------------------------------------------------------- webhook

    async def start_webhook(self, options: WebhookOptions) -> None:
        """The stored updates first, then listen, then tell Telegram where."""
        await self.recover()
        path = "/" + options["url_path"].strip("/")
        handlers = [
            (rf"{path}/?", WebhookCall, {"intake": self, "secret": options["secret_token"]})
        ]
        self._server = HTTPServer(tornado.web.Application(handlers))
        self._server.listen(options["port"], address=options["listen"])
        await self.app.bot.set_webhook(
            url=options["webhook_url"],
            allowed_updates=self.allowed_updates,
            secret_token=options["secret_token"],
        )

    # ---------------------------------------------------------------- stop

    async def stop(self) -> None:
        """Stop receiving. Polling confirms what it stored, so a restart is
        not sent it again (if this fails, the redelivery is only counted)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None
            if self._offset is not None:
                with contextlib.suppress(TelegramError):
                    await self.app.bot.get_updates(offset=self._offset, timeout=0)
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None


def _seconds(value: object) -> float:
    """RetryAfter.retry_after is an int or a timedelta, by version."""
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]


class WebhookCall(tornado.web.RequestHandler):
    """One call from Telegram: refused without the secret (403) or with a
    body that is no update (400); answered 200 only once the update is
    stored, so a failure to store (500) makes Telegram call again."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, intake: Intake, secret: str | None) -> None:
        self.intake = intake
        self.secret = secret

    async def post(self) -> None:
        if self.secret:
            given = self.request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.secret.encode()):
                raise tornado.web.HTTPError(403)
        try:
            payload = json.loads(self.request.body)
            update = Update.de_json(payload, self.intake.app.bot)
        except Exception:
            raise tornado.web.HTTPError(400) from None
        if update is None or not isinstance(payload, dict):
            raise tornado.web.HTTPError(400)
        await self.intake.receive([update], [payload])
        self.set_status(200)

    def log_exception(self, *args: Any) -> None:
        """Refusals are expected (403, 400); only a failure to store is logged."""
        if not isinstance(args[1], tornado.web.HTTPError):
            log.error("webhook call not stored", exc_info=args[1])
