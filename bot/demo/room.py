"""The training room: the real bot (handlers, engine, outbox, reminders,
built as `sopbot run` builds it) against the built-in Bot API server, with
a made-up office in a throw-away folder and a clock that runs fast.

Nothing here reaches a real office: the settings are made in code (the
environment and `.env` cannot point the room at a real database), the
folder is new or empty, and it is removed at the end unless kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.app import build_application
from bot.app import start as start_bot
from bot.app import stop as stop_bot
from bot.botapi import BotApiServer
from bot.chat import SopApp
from bot.clock import ScaledClock
from bot.db import Database
from bot.demo.cast import ADMIN_ID, Actor, cast, enrol
from bot.demo.words import say
from bot.intake import Intake
from bot.migrate import upgrade
from bot.services import Services
from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_SPEED = 60.0
MAX_SPEED = 3600.0
# The sweep runs once a minute of office time, but never more often than this
# (seconds of real time): at 3600x a minute passes every 1/60 s.
SWEEP_FLOOR = 0.5
MARKER = ".sopbot-latihan"  # a folder the room made for itself


class RoomRefused(Exception):
    """The room will not start here; the message says why, in Indonesian."""


def check_folder(folder: Path) -> None:
    """A kept folder must be new or empty: never a real office's DATA_DIR."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise RoomRefused(say("bukan_folder", folder=folder))
    if (folder / "sopbot.db").exists() or (folder / "data" / "sopbot.db").exists():
        raise RoomRefused(say("folder_berdatabase", folder=folder))
    if any(folder.iterdir()):
        raise RoomRefused(say("folder_berisi", folder=folder))


def first_working_moment(services: Services) -> datetime:
    """The room's clock starts now if the office is open, else at its next
    opening, so a trainer in the evening still sees a working day."""
    return services.calendar.next_opening(datetime.now(UTC))


@dataclass
class TrainingRoom:
    """Start with `await room.start()`, end with `await room.stop()`."""

    speed: float = DEFAULT_SPEED
    keep: Path | None = None
    folder: Path = field(init=False)
    server: BotApiServer = field(init=False)
    clock: ScaledClock = field(init=False)
    services: Services = field(init=False)
    app: SopApp = field(init=False)
    actors: list[Actor] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.speed <= MAX_SPEED:
            raise RoomRefused(say("kecepatan", max=int(MAX_SPEED)))
        self._ticker: asyncio.Task[None] | None = None
        self._intake: Intake | None = None
        self._made_folder = False
        self._heard: dict[int, int] = {}  # chat -> how many times the bot answered there

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.keep is not None:
            check_folder(self.keep)
            self.keep.mkdir(parents=True, exist_ok=True)
            self.folder = self.keep
        else:
            self.folder = Path(tempfile.mkdtemp(prefix="sopbot-latihan-"))
            self._made_folder = True
        (self.folder / MARKER).write_text("ruang latihan sopbot demo\n", encoding="utf-8")
        # The clock starts on its own; its first moment needs the calendar.
        self.clock = ScaledClock(datetime.now(UTC), self.speed)
        self.server = BotApiServer(
            token="700000001:LATIHAN-ruang-latihan-tanpa-telegram-x",
            username="sop_latihan_bot",
            now=lambda: self.clock.now().timestamp(),
        )
        self.server.listeners.append(self._hear)
        await self.server.start()
        settings = Settings(
            _env_file=None,  # pydantic-settings' own: no .env file
            bot_token=self.server.token,
            bot_username=self.server.username,
            bot_api_base_url=self.server.base_url,
            bot_api_file_url=self.server.base_file_url,
            local_bot_api=False,
            data_dir=self.folder / "data",
            database_url=f"sqlite+aiosqlite:///{(self.folder / 'data' / 'sopbot.db').as_posix()}",
            office_file=None,
            sop_dir=None,
            admin_telegram_ids=[ADMIN_ID],
            webhook_url="",
            clock_start=None,
            log_level="WARNING",
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.db_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()
        self.services = Services.build(settings, clock=self.clock)
        self.clock.advance(
            seconds=(first_working_moment(self.services) - self.clock.now()).total_seconds()
        )
        self.app = build_application(self.services)
        # Started as `sopbot run` starts it: the inbox's intake, polling.
        self._intake = await start_bot(self.app, poll_timeout=5)
        self.actors = cast(self.server, self.services)
        await enrol(self.actors, self.services)
        self._ticker = asyncio.create_task(self._sweep_at_pace())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        app = getattr(self, "app", None)
        if app is not None:
            await stop_bot(app, self._intake)
            self._intake = None
        if getattr(self, "server", None) is not None:
            await self.server.stop()
        if self._made_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------- the clock

    def set_speed(self, factor: float) -> None:
        if not 1 <= factor <= MAX_SPEED:
            raise RoomRefused(say("kecepatan", max=int(MAX_SPEED)))
        self.clock.set_factor(factor)

    async def sweep(self) -> None:
        """What the minute sweep does (reminders, escalations, albums made
        complete, the digest), then the sender at once."""
        await self.services.deadlines.sweep()
        sender = self.app.bot_data.sender
        if sender is not None:
            await sender.flush(self.app.bot)

    async def _sweep_at_pace(self) -> None:
        """The bot's own sweep runs once a real minute and its timer waits
        real seconds; with the clock fast, this one runs once a minute of
        the room's time, so reminders come at the sped-up pace."""
        while True:
            await asyncio.sleep(max(SWEEP_FLOOR, 60.0 / self.clock.factor))
            try:
                await self.sweep()
            except Exception:  # one failed sweep must not end the room
                log.exception("sweep in the training room failed")

    # --------------------------------------------------------------- people

    def actor(self, telegram_id: int) -> Actor:
        for actor in self.actors:
            if actor.id == telegram_id:
                return actor
        raise KeyError(telegram_id)

    def _hear(self, chat_id: int, event: dict[str, Any]) -> None:
        if not event.get("mine"):
            self._heard[chat_id] = self._heard.get(chat_id, 0) + 1

    def heard(self, chat_id: int) -> int:
        """How many times the bot has answered in this chat (a message, an
        edit, a press's answer): `answered` waits for the next."""
        return self._heard.get(chat_id, 0)

    async def answered(self, chat_id: int, since: int, *, limit: float = 10.0) -> bool:
        """Until the bot answers in this chat after `since`; False if it
        has not within `limit` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while self.heard(chat_id) <= since:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def settle(self, *, quiet: float = 0.1, limit: float = 30.0) -> None:
        """Until the bot has handled what people sent and sent what it owes
        now: the server quiet and nothing due in the outbox."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            await self.server.wait_idle(quiet=quiet, limit=limit)
            busy = (self._intake is not None and self._intake.busy) or self.app.update_queue.qsize()
            owed = await self.services.outbox.due()
            if not busy and not owed:
                return
            sender = self.app.bot_data.sender
            if loop.time() > deadline:
                # What was busy, so that a room that gives up can be diagnosed.
                due = [(n.id, n.key, n.member_id) for n in owed]
                log.warning(
                    "room not settled after %.0f s: intake busy=%s in flight=%s queued=%s "
                    "due=%s %s",
                    limit,
                    self._intake.busy if self._intake is not None else None,
                    self.services.inbox.in_flight,
                    self.app.update_queue.qsize(),
                    due,
                    sender.holding_back() if sender is not None else "no sender",
                )
                raise TimeoutError("bot masih sibuk")
            if sender is not None:
                await sender.flush(self.app.bot)
