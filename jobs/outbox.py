"""Delivers the outbox to Telegram: renders each row's template, sends it,
and records the result; honours RetryAfter (for every row: flood limits are
bot-wide) and backs off on network errors and on any other failure of a
row, so one broken row never blocks the others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram import Bot, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import CallbackContext

from bot.chat import keyboard, send_pages
from bot.models import Notification
from bot.outbox import Outbox
from bot.services import Services
from bot.texts import CAPTION_LIMIT, TEXT_LIMIT, visible_length

log = logging.getLogger(__name__)


# Telegram's answers to an edit that cannot be made: a new message instead.
UNEDITABLE = ("can't be edited", "to edit not found", "message_id_invalid")


def is_file_message(n: Notification) -> bool:
    """Was this row sent as a file with a caption (not as text, nor as an
    album's pages followed by text)?"""
    return n.file_id is not None and not n.context.get("album")


def had_buttons(n: Notification) -> bool:
    """Was this row sent with buttons? Taking away a keyboard a message does
    not have is an edit Telegram refuses ("message is not modified")."""
    return bool(n.context.get("actions"))


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(eq=False)
class _Held:
    """What a handler's commits owe, held until it has answered."""

    task: asyncio.Task[object] | None
    owed: set[int] = field(default_factory=set)  # members owed a message


_held: ContextVar[_Held | None] = ContextVar("sopbot_outbox_held", default=None)


class OutboxSender:
    """Sends what is owed: woken by every commit that queued a message
    (`attach`), and ticked by a repeating job for what waits on a time (a
    retry, office hours, Telegram's pause)."""

    def __init__(self, services: Services, outbox: Outbox | None = None) -> None:
        self.services = services
        self.outbox = outbox or services.outbox
        self._lock = asyncio.Lock()
        self._again = False  # woken while a flush ran: it looks once more
        self._woken: asyncio.Task[int] | None = None
        self._bot: Bot | None = None
        # Members a handler still answering has queued messages for, with
        # how many such handlers: their rows wait for that answer (holding).
        self._answering: dict[int, int] = {}

    def holding_back(self) -> str:
        """What keeps owed rows waiting now, for a diagnosis in a log line:
        a flush in progress, and the members whose handler is answering."""
        return f"flushing={self._lock.locked()} answering={sorted(self._answering)}"

    def attach(self, bot: Bot) -> None:
        """Send through `bot` as soon as a commit owes a message. A flush of
        its own, not a scheduler job after every update: that job and its
        read of the outbox were paid by every update, though most owe
        nothing."""
        self._bot = bot
        self.outbox.on_owed(self.wake)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Around a handler: what its commits owe is sent once it has
        answered, so the person reads the answer to what they did before
        what follows from it (a task, a receipt). Neither a wake nor the
        repeating tick sends those rows to those members meanwhile; other
        people's rows go as usual."""
        held = _Held(asyncio.current_task())
        token = _held.set(held)
        try:
            yield
        finally:
            _held.reset(token)
            if held.owed:
                for member_id in held.owed:
                    left = self._answering[member_id] - 1
                    if left:
                        self._answering[member_id] = left
                    else:
                        del self._answering[member_id]
                self.wake()

    def wake(self, owed: frozenset[int] = frozenset()) -> None:
        """A message is owed now to `owed` (called after the commit that
        queued it; with none named, look at whatever is due)."""
        held = _held.get()
        if held is not None and held.task is asyncio.current_task():
            for member_id in owed - held.owed:  # after the handler's answer (holding)
                self._answering[member_id] = self._answering.get(member_id, 0) + 1
            held.owed |= owed
            return
        if self._bot is None:
            return
        if self._lock.locked():
            self._again = True
        elif self._woken is None or self._woken.done():
            self._woken = asyncio.get_running_loop().create_task(
                self.flush(self._bot), name="outbox:woken"
            )

    @property
    def busy(self) -> bool:
        """Is a flush running or about to run?"""
        return self._lock.locked() or (self._woken is not None and not self._woken.done())

    async def stop(self) -> None:
        """No more wakes; the flush under way finishes (a row half sent is
        what the outbox already survives, but a clean stop leaves none)."""
        self._bot = None
        if self._woken is not None:
            await asyncio.gather(self._woken, return_exceptions=True)

    async def job(self, context: CallbackContext[Any, Any, Any, Any]) -> None:
        """The repeating job: only the bot is used."""
        await self.flush(context.bot)

    async def flush(self, bot: Bot) -> int:
        """Send everything due; returns how many were sent. One flush at a time:
        a tick that finds one running leaves the work to it, and a wake during
        it makes it look again before it ends."""
        if self._lock.locked():
            self._again = True
            return 0
        sent = 0
        seen: set[int] = set()  # each row once per flush, so nothing loops
        async with self._lock:
            while True:
                self._again = False
                batch = [
                    row
                    for row in await self.outbox.due()
                    if row.id not in seen and row.member_id not in self._answering
                ]
                if not batch:
                    if self._again:
                        continue
                    return sent
                for row in batch:
                    seen.add(row.id or 0)
                    try:
                        outcome = await self._deliver(bot, row)
                    except Exception:
                        # E.g. the database failed while recording: this row
                        # waits for the next tick, the others still go.
                        log.exception("delivery of outbox row %s failed", row.id)
                        continue
                    if outcome == "sent":
                        sent += 1
                    elif outcome == "pause":
                        return sent

    async def _deliver(self, bot: Bot, row: Notification) -> str:
        claimed = await self.outbox.begin(row.id or 0)
        if claimed is None:
            return "skipped"
        n, chat_id = claimed
        try:
            message = await self._send(bot, chat_id, n)
        except RetryAfter as exc:
            wait = _seconds(exc.retry_after)
            log.warning("flood control: waiting %.0f s before sending anything", wait)
            self.outbox.pause(wait)
            await self.outbox.retry_later(n.id or 0, wait, str(exc), count_attempt=False)
            return "pause"
        except Forbidden as exc:
            await self.outbox.blocked(n.id or 0, str(exc))
            return "blocked"
        except BadRequest as exc:
            log.error("message %s refused by Telegram: %s", n.key, exc)
            await self.outbox.failed(n.id or 0, str(exc))
            return "failed"
        except (TimedOut, NetworkError) as exc:
            delay = self.outbox.backoff(n.attempts)
            log.warning("send of %s failed (%s); retry in %.0f s", n.key, exc, delay)
            await self.outbox.retry_later(n.id or 0, delay, str(exc))
            return "retry"
        except Exception as exc:
            # A missing template, a vanished stored file, a bad context: the
            # same limit and backoff as a network error, then the admins.
            delay = self.outbox.backoff(n.attempts)
            log.exception("message %s could not be sent; retry in %.0f s", n.key, delay)
            await self.outbox.retry_later(n.id or 0, delay, f"{type(exc).__name__}: {exc}")
            return "retry"
        await self.outbox.sent(n.id or 0, message.message_id if message else None)
        return "sent"

    async def _edit(self, bot: Bot, chat_id: int, n: Notification) -> Message | None:
        """Edit an earlier message in place: its text again, without its
        buttons, and the row's line under it (a file message just loses its
        buttons). A message too old or too long to edit, or one Telegram will
        not edit, gets a short new message instead; one already showing the
        edit ("not modified") is done."""
        texts = self.services.texts
        found = await self.outbox.edit_target(n)
        try:
            if found is not None:
                message_id, target = found
                line = texts.render(n.template, **n.context)
                if is_file_message(target):
                    # A file (a task's document, a unit's file for review):
                    # the line goes under its caption where it fits, else
                    # only its buttons go.
                    caption, rest = texts.render_caption(target.template, **target.context)
                    text = f"{caption}\n\n{line}"
                    if not rest and visible_length(text) <= CAPTION_LIMIT:
                        await bot.edit_message_caption(
                            chat_id=chat_id, message_id=message_id, caption=text, reply_markup=None
                        )
                    elif had_buttons(target):
                        await bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
                    return None
                text = f"{texts.render_parts(target.template, **target.context)[-1]}\n\n{line}"
                if visible_length(text) <= TEXT_LIMIT:
                    edited = await bot.edit_message_text(
                        text, chat_id=chat_id, message_id=message_id, reply_markup=None
                    )
                    return edited if isinstance(edited, Message) else None
                if had_buttons(target):
                    # No room for the line (it comes as a notice): the buttons
                    # still go, as a press leaves them to this edit.
                    await bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
        except BadRequest as exc:
            reason = exc.message.lower()
            if "not modified" in reason:
                return None
            if not any(words in reason for words in UNEDITABLE):
                raise
        if n.context.get("actor_id") == n.member_id:
            return None  # whoever acted was answered at once; no notice for them
        return await bot.send_message(
            chat_id,
            texts.render(f"{n.template}_notice", **n.context),
            disable_notification=n.silent,
        )

    async def _send(self, bot: Bot, chat_id: int, n: Notification) -> Message | None:
        """Nothing is cut: a long text goes as several messages (buttons on
        the last), and what does not fit a file's caption follows it as text.
        A silent row rings no phone (disable_notification)."""
        texts = self.services.texts
        quiet = n.silent
        if n.edits_id is not None:
            return await self._edit(bot, chat_id, n)
        markup = keyboard(texts, n.context.get("actions"))
        album = n.context.get("album")
        if album:
            # An album's pages, then the text (and its buttons) once, for all.
            pages = [await self.services.engine.queries.file(int(i)) for i in album]
            await send_pages(bot, chat_id, self.services, pages)
        if not is_file_message(n):
            parts = texts.render_parts(n.template, **n.context)
            for part in parts[:-1]:
                await bot.send_message(chat_id, part, disable_notification=quiet)
            return await bot.send_message(
                chat_id, parts[-1], reply_markup=markup, disable_notification=quiet
            )
        caption, follow_up = texts.render_caption(n.template, **n.context)
        stored = await self.services.engine.queries.file(n.file_id or 0)
        source = stored.telegram_file_id or self.services.storage.read(stored.storage_path)
        if stored.kind == "photo":
            message = await bot.send_photo(
                chat_id, source, caption=caption, reply_markup=markup, disable_notification=quiet
            )
        else:
            message = await bot.send_document(
                chat_id,
                source,
                caption=caption,
                reply_markup=markup,
                filename=stored.original_name,
                disable_notification=quiet,
            )
        for part in follow_up:
            await bot.send_message(chat_id, part, disable_notification=quiet)
        return message
